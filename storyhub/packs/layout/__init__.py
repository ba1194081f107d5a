"""Lay out the pieces printed on fixed sheets: quote cards and posters.

WeasyPrint cannot shrink text to fit a box, and a card or a poster's panel is a box of fixed
size: text that did not fit would run over its edge or under the next card. So the type sizes
are chosen here, before rendering. Each text is measured with the advance widths of the fonts
the PDF uses (the files WeasyPrint loads) and wrapped word by word as WeasyPrint wraps it
(`measure`); the largest size whose lines fit is taken, never below the piece's smallest. A
quote too long for its box at that size takes a whole row of the card sheet, or continues on
the next card or sheet ("card 1 of 2", "continued"); a quote is never cut short or clipped.

The measurements err on the safe side (kerning, which narrows text, is left out, a line is
taken as a little narrower than it is, and a word too long for a line is broken where
WeasyPrint would break it first), so the PDF needs at most the lines counted here;
tests/packs/test_print.py checks in WeasyPrint's own layout that every line lands in its box.
Each box's place, size and padding and each text's size and line height reach the templates as
inline styles; the margins between lines are in the stylesheets, beside the constants here that
count on them. The lines printed around a quote (a card's heading and source, a theme's story
count, a poster's heading) are worded here, measured, and handed to the templates to print.
"""

from .cards import CARD_SHEETS, card_sheets
from .posters import board_sheets, theme_poster_sheets

__all__ = ["CARD_SHEETS", "board_sheets", "card_sheets", "theme_poster_sheets"]
