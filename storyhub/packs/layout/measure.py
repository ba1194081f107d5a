"""Measure text as WeasyPrint sets it, and write the styles that place it."""

from __future__ import annotations

import math
import re
from functools import cache
from pathlib import Path

FONTS = Path(__file__).resolve().parents[2] / "static" / "fonts"
MM_PER_PT = 25.4 / 72
# A line is taken as this much narrower than its box: font shaping may differ slightly from
# the advance widths added up here.
WIDTH_MARGIN = 0.99
TEXT_LEADING = 1.25  # line height of short lines (theme names on cards, sources, counts)
QUOTE_LEADING = 1.3
TITLE_LEADING = 1.1  # line height of poster titles


@cache
def _advances(bold: bool) -> tuple[dict[int, int], int, int]:
    """Return (advance width by code point, the missing glyph's advance, units per em)."""
    from fontTools.ttLib import TTFont

    with TTFont(FONTS / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")) as font:
        metrics = font["hmtx"].metrics
        widths = {code: metrics[glyph][0] for code, glyph in font.getBestCmap().items()}
        return widths, metrics[".notdef"][0], font["head"].unitsPerEm


@cache
def _units(word: str, bold: bool) -> int:
    widths, missing, _per_em = _advances(bold)
    return sum(widths.get(ord(c), missing) for c in word)


def text_width(text: str, size: float, bold: bool = False) -> float:
    """Return the width of `text` on one line at `size` pt, in mm."""
    return _units(text, bold) / _advances(bold)[2] * size * MM_PER_PT


# Where a line may break inside a word (after a hyphen, a slash, "?", "…"; before a bracket or
# a dash): a word too long for its line breaks there first, and anywhere only where it must.
_BREAKS = re.compile(r"(?<=[-‐–—/?!…|,;:.)\]}])|(?=[(\[{–—])")


def _long_word_lines(word: str, size: float, room: float, bold: bool) -> tuple[int, float]:
    """Return the lines a word too long for one line takes, from the start of a line, and how
    much of its last line it fills."""
    lines, used = 1, 0.0
    # Broken anywhere, a line may end up to a character short of full.
    full = room - text_width("W", size, bold)
    for piece in filter(None, _BREAKS.split(word)):
        wide = text_width(piece, size, bold)
        if used + wide <= room:
            used += wide
            continue
        if used:
            lines += 1
        extra = max(math.ceil(wide / full) - 1, 0)
        lines += extra
        used = wide - extra * full
    return lines, used


def line_count(text: str, size: float, width: float, bold: bool = False) -> int:
    """Return how many lines `text` takes at `size` pt in a box `width` mm wide.

    Lines break between words; a word longer than the line breaks inside (the stylesheets set
    `overflow-wrap: anywhere`, so it does in the PDF too).
    """
    room = width * WIDTH_MARGIN
    space = text_width(" ", size, bold)
    lines, used = 0, 0.0
    for word in text.split():
        wide = text_width(word, size, bold)
        if lines and used + space + wide <= room:
            used += space + wide
        elif wide <= room:
            lines, used = lines + 1, wide
        else:  # on lines of its own, as many as it needs
            taken, used = _long_word_lines(word, size, room, bold)
            lines += taken
    return lines


def text_height(text: str, size: float, width: float, leading: float,
                bold: bool = False) -> float:
    """Return the height in mm of `text` set at `size` pt in a box `width` mm wide."""
    return line_count(text, size, width, bold) * size * leading * MM_PER_PT


def largest(sizes: tuple[int, ...], fits) -> int | None:
    """Return the first of `sizes` (largest first) for which `fits(size)` holds."""
    return next((s for s in sizes if fits(s)), None)


def mm(value: float) -> str:
    """Return a length in mm for a style, as short as it can be written."""
    return f"{value:.2f}".rstrip("0").rstrip(".") + "mm"


def box_style(left: float, top: float, width: float, height: float,
              padding: float = 0.0) -> str:
    """Return the inline style placing a box on its sheet (all in mm)."""
    style = (f"left: {mm(left)}; top: {mm(top)}; width: {mm(width)}; "
             f"height: {mm(height)}")
    return style + (f"; padding: {mm(padding)}" if padding else "")


def foot_style(inset: float) -> str:
    """Return the style placing an absolutely positioned line at the foot of its box (mm)."""
    return f"left: {mm(inset)}; right: {mm(inset)}; bottom: {mm(inset)}"


def type_style(size: float, leading: float) -> str:
    return f"font-size: {size:g}pt; line-height: {leading:g}"


def quoted(text: str, first: bool = True, last: bool = True) -> str:
    """Return a quote (or a part of one) as printed: curly marks where it starts and ends."""
    return ("“" if first else "") + text + ("”" if last else "")


def clock(seconds: float) -> str:
    """Return a time in a recording as m:ss (or h:mm:ss)."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return (f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours
            else f"{rest // 60}:{rest % 60:02d}")


def source_line(quote: dict) -> str:
    """A quote's source as the shipped templates print it."""
    return (f"{quote['role']} · story {quote['code']} · {clock(quote['start'])}–"
            f"{clock(quote['end'])}")


def count_line(theme: dict) -> str:
    """A theme's story count as the shipped poster template prints it."""
    stories = f"{theme['stories']} {'stories' if theme['stories'] != 1 else 'story'}"
    return f"{stories} · {theme['shared_label']}" if theme["shared_label"] else stories


SENTENCE_ENDS = (".", "?", "!", ".”", "?”", "!”", ".’", "?’", "!’")


def split_words(text: str, parts: int, sentences: bool = True) -> list[str]:
    """Split `text` between words into `parts` runs of about the same length, in order.

    With `sentences`, a run ends at a sentence's end where one is near its share of the text.
    """
    words = text.split()
    starts = [0]  # where each word starts, counting a space after each
    for word in words:
        starts.append(starts[-1] + len(word) + 1)
    total = starts[-1]
    cuts = [0]
    for k in range(1, parts):
        target = total * k / parts
        # A run keeps at least one word, and leaves one for each run after it.
        options = range(cuts[-1] + 1, len(words) - (parts - k) + 1)

        def cost(i: int, target: float = target) -> float:
            ends_sentence = sentences and words[i - 1].endswith(SENTENCE_ENDS)
            return abs(starts[i] - target) - (0.2 * total / parts if ends_sentence else 0)

        cuts.append(min(options, key=cost))
    cuts.append(len(words))
    return [" ".join(words[a:b]) for a, b in zip(cuts, cuts[1:], strict=False)]


def splits(text: str):
    """Yield the ways to print `text`, best first: whole, then in 2, 3… parts (at sentence
    ends where they are near the middle, else evenly)."""
    yield [text]
    for parts in range(2, len(text.split()) + 1):
        yield split_words(text, parts)
        yield split_words(text, parts, sentences=False)
