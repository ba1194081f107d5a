"""Quote cards: four A6 cards to an A4 sheet with cut lines, one A6 card a page, or two
large-print A5 cards to a sheet."""

from __future__ import annotations

from dataclasses import dataclass

from .measure import (
    QUOTE_LEADING,
    TEXT_LEADING,
    box_style,
    foot_style,
    largest,
    line_count,
    quoted,
    source_line,
    splits,
    text_height,
    type_style,
)


@dataclass(frozen=True)
class CardSheet:
    """A sheet of quote cards: `cols` × `rows` cards, cut apart along the lines between them."""

    width: float  # the sheet, mm
    height: float
    cols: int
    rows: int
    padding: float  # inside each card, mm: also keeps text clear of an office printer's edge
    sizes: tuple[int, ...]  # quote sizes tried, largest first (pt)
    small: int  # the theme's name and the source line (pt)
    whole_rows: bool  # a quote too long for one card may take a whole row of the sheet
    # Between a card's theme name and its quote (.card-theme's margin in pack-cards.css), and
    # the least space above its source (mm).
    gap: float = 4.0

    @property
    def card_width(self) -> float:
        return self.width / self.cols

    @property
    def card_height(self) -> float:
        return self.height / self.rows


CARD_SHEETS = {
    # Four A6 cards on an A4 sheet, cut in half each way: for an office printer.
    "cards": CardSheet(210, 297, 2, 2, 10, tuple(range(22, 13, -1)), 14, True),
    # One A6 card a page, for card stock or a printer that takes A6.
    "cards-a6": CardSheet(105, 148, 1, 1, 9, tuple(range(22, 13, -1)), 14, False),
    # Large print: two A5 cards on an A4 sheet, cut in half once.
    "cards-large": CardSheet(210, 297, 1, 2, 12, tuple(range(30, 17, -1)), 18, False),
}
MARK = 7.0  # length of a cut mark at the sheet's edge, mm
MARK_INSET = 3.0  # from the edge to the mark, mm: office printers leave 3–5 mm blank


def card_heading(theme: dict, first: bool) -> str:
    return f"{theme['number']} · {theme['title']}" + ("" if first else " (continued)")


def card_source(quote: dict, part: int, parts: int, width: float, size: float) -> list[str]:
    """Return a card's source in lines: on one line where it fits, else the storyteller's
    role above the rest (so "story S010" is not broken over two lines)."""
    line = source_line(quote) + (f" · card {part} of {parts}" if parts > 1 else "")
    if line_count(line, size, width) == 1:
        return [line]
    return [quote["role"], line.removeprefix(quote["role"] + " · ")]


def _card(sheet: CardSheet, span: int, theme: dict, quote: dict, run: str, part: int,
          parts: int) -> dict:
    width = sheet.card_width * span - 2 * sheet.padding
    return {"theme": theme, "quote": quote, "span": span, "part": part, "parts": parts,
            "width": width, "heading": card_heading(theme, part == 1),
            "text": quoted(run, part == 1, part == parts),
            "source_lines": card_source(quote, part, parts, width, sheet.small)}


def _card_fits(sheet: CardSheet, card: dict, size: int) -> bool:
    width = card["width"]
    room = (sheet.card_height - 2 * sheet.padding - 2 * sheet.gap
            - text_height(card["heading"], sheet.small, width, TEXT_LEADING, bold=True)
            - sum(text_height(line, sheet.small, width, TEXT_LEADING)
                  for line in card["source_lines"]))
    return text_height(card["text"], size, width, QUOTE_LEADING) <= room


def _cards_of(sheet: CardSheet, theme: dict, quote: dict) -> list[dict]:
    """Return the card(s) one quote is printed on: one card, one a row wide, or parts."""
    smallest = sheet.sizes[-1]
    spans = (1, sheet.cols) if sheet.whole_rows and sheet.cols > 1 else (1,)
    cards: list[dict] = []
    for span in spans:
        cards = [_card(sheet, span, theme, quote, quote["text"], 1, 1)]
        if _card_fits(sheet, cards[0], smallest):
            break
    else:
        for runs in splits(quote["text"]):
            cards = [_card(sheet, spans[-1], theme, quote, run, i, len(runs))
                     for i, run in enumerate(runs, start=1)]
            if all(_card_fits(sheet, c, smallest) for c in cards):
                break
    size = largest(sheet.sizes, lambda s: all(_card_fits(sheet, c, s) for c in cards))
    for card in cards:
        card["size"] = size or smallest
        card["quote_style"] = type_style(card["size"], QUOTE_LEADING)
        card["small_style"] = type_style(sheet.small, TEXT_LEADING)
    return cards


def _rows_of(cards: list[dict], cols: int) -> list[list[dict]]:
    """Put cards in rows of `cols` places, in order; a card a row wide takes a row of its own.

    A row with a place left before a card a row wide takes the next one-place card instead,
    so a sheet has no gap.
    """
    rows: list[list[dict]] = []
    waiting = list(cards)
    while waiting:
        row = [waiting.pop(0)]
        while sum(c["span"] for c in row) < cols:
            following = next((c for c in waiting if c["span"] == 1), None)
            if following is None:
                break
            waiting.remove(following)
            row.append(following)
        rows.append(row)
    return rows


def _cut_marks(sheet: CardSheet, rows: list[list[dict]]) -> list[dict]:
    """Return the cut lines of a sheet, and marks where they meet its edges."""
    marks = []
    w, h = sheet.card_width, sheet.card_height
    for r in range(1, sheet.rows):  # across the sheet, between rows
        y = r * h
        marks += [{"kind": "guide across", "style": box_style(0, y, sheet.width, 0)},
                  {"kind": "mark across", "style": box_style(MARK_INSET, y, MARK, 0)},
                  {"kind": "mark across",
                   "style": box_style(sheet.width - MARK_INSET - MARK, y, MARK, 0)}]
    for r, row in enumerate(rows):  # down the sheet, between the cards of a row
        x = 0.0
        for card in row[:-1]:
            x += card["span"] * w
            marks.append({"kind": "guide down", "style": box_style(x, r * h, 0, h)})
            if r == 0:
                marks.append({"kind": "mark down", "style": box_style(x, MARK_INSET, 0, MARK)})
            if r == sheet.rows - 1:
                marks.append({"kind": "mark down", "style": box_style(
                    x, sheet.height - MARK_INSET - MARK, 0, MARK)})
    return marks


def card_sheets(piece: str, content: dict) -> list[dict]:
    """Return the sheets of quote cards for `piece` ("cards", "cards-a6", "cards-large")."""
    sheet = CARD_SHEETS[piece]
    cards = [card for theme in content["themes"] for quote in theme["quotes"]
             for card in _cards_of(sheet, theme, quote)]
    rows = _rows_of(cards, sheet.cols)
    sheets = []
    for start in range(0, len(rows), sheet.rows):
        these = rows[start:start + sheet.rows]
        for r, row in enumerate(these):
            x = 0.0
            for card in row:
                width = card["span"] * sheet.card_width
                card["row"] = r
                card["style"] = box_style(x, r * sheet.card_height, width,
                                          sheet.card_height, sheet.padding)
                card["source_style"] = foot_style(sheet.padding)
                x += width
        sheets.append({"cards": [c for row in these for c in row],
                       "marks": _cut_marks(sheet, these),
                       "style": box_style(0, 0, sheet.width, sheet.height)})
    return sheets
