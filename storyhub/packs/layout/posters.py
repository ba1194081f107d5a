"""Posters to read from across a room: the theme board (every theme, A3 landscape) and one
A3 portrait poster a theme."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .measure import (
    QUOTE_LEADING,
    TEXT_LEADING,
    TITLE_LEADING,
    box_style,
    count_line,
    foot_style,
    largest,
    line_count,
    mm,
    quoted,
    source_line,
    splits,
    text_height,
    type_style,
)

QUOTE_SIZES = (40, 36, 32, 30, 28, 26, 24, 22, 20)  # poster quotes: 20 pt reads at 3 m
BOARD_TITLES = (60, 54, 48, 44, 40, 36)  # theme names on the board
THEME_TITLES = (80, 72, 64, 56, 48, 44, 40)  # the name on a theme's own poster
HEADINGS = (54, 48, 44, 40, 36)  # the board's title
SMALL = 20  # sources, the line under a heading, a board panel's counts (pt)
LARGE = 24  # a theme poster's counts, description and prompts (pt)
PROMPTS = ("Add a sticky note: What is working? · What could change? · "
           "What could we do together?")
# Within a panel (mm): under the theme's name, under its counts (and description), between
# quotes, above a quote's source; above a theme poster's prompts. The margins of pack-poster.css
# and pack-theme-posters.css.
UNDER_TITLE, UNDER_COUNTS, BETWEEN_QUOTES, ABOVE_SOURCE, ABOVE_PROMPTS = 3, 5, 8, 2, 6
QUOTE_BAR = 8.0  # a quote's bar down its left side and the space after it (.quote, mm)


@dataclass(frozen=True)
class Sheet:
    """A poster's sheet and how its panels are framed."""

    kind: str  # the sheet's class in the stylesheet
    width: float  # mm
    height: float
    margin: float
    border: float  # round a panel, inside its box (mm)
    padding: float  # inside a panel's border (mm)
    gap: float = 6.0  # between panels, and under the heading (mm)

    @property
    def inner_width(self) -> float:
        return self.width - 2 * self.margin

    @property
    def inner_height(self) -> float:
        return self.height - 2 * self.margin

    @property
    def frame(self) -> float:
        return self.border + self.padding

    def style(self) -> str:
        return box_style(0, 0, self.width, self.height, self.margin)

    def panel_style(self, left: float, top: float, width: float, height: float) -> str:
        style = box_style(left, top, width, height, self.padding)
        return style + (f"; border-width: {mm(self.border)}" if self.border else "")


BOARD = Sheet("board", 420, 297, 12, 1.5, 6)  # A3 landscape: every theme
THEME_POSTER = Sheet("theme-poster", 297, 420, 15, 0, 0)  # A3 portrait: one theme
BOARD_GRIDS = {1: (1, 1), 2: (2, 1), 3: (3, 1), 4: (2, 2), 5: (3, 2), 6: (3, 2), 7: (4, 2),
               8: (4, 2)}


def _title_size(titles: list[str], sizes: tuple[int, ...], width: float) -> int:
    """Return the largest size that sets every title in two lines, else the smallest."""
    found = largest(sizes, lambda s: all(line_count(t, s, width, bold=True) <= 2
                                          for t in titles))
    return found or sizes[-1]


def _heading_height(heading: str, size: int, line: str, width: float) -> float:
    return (text_height(heading, size, width, TITLE_LEADING, bold=True)
            + text_height(line, SMALL, width, TEXT_LEADING))


def _block_height(part: dict, size: float, width: float) -> float:
    """Return the height of a quote (or part of one) and its source line, in mm."""
    return (text_height(part["text"], size, width - QUOTE_BAR, QUOTE_LEADING) + ABOVE_SOURCE
            + text_height(part["source"], SMALL, width - QUOTE_BAR, TEXT_LEADING))


def _quotes_height(parts: list[dict], size: float, width: float) -> float:
    return (sum(_block_height(p, size, width) for p in parts)
            + BETWEEN_QUOTES * max(len(parts) - 1, 0))


def _parts(quote: dict, fits) -> list[dict]:
    """Return a quote as the parts it is printed in: whole if `fits(part)`, else the fewest
    parts that each fit."""
    def as_part(run: str, number: int, parts: int) -> dict:
        source = "— " + source_line(quote) + (f" · part {number} of {parts}" if parts > 1
                                               else "")
        return {"text": quoted(run, number == 1, number == parts), "source": source,
                "quote": quote}

    made: list[dict] = []
    for runs in splits(quote["text"]):
        made = [as_part(run, i, len(runs)) for i, run in enumerate(runs, start=1)]
        if all(fits(part) for part in made):
            break
    return made


def board_heading(content: dict, sheet_no: int, sheets: int) -> tuple[str, str]:
    """Return the board's title and the line under it."""
    workshop = content["workshop"]
    line = f"What {content['gathering']['stories']} stories told us"
    if workshop["held_on_text"]:
        line += f" · {workshop['held_on_text']}"
    if sheets > 1:
        line += f" · sheet {sheet_no} of {sheets}"
    return workshop["title"], line


def _board_panel(theme: dict, width: float, height: float, title: int,
                 quote_needed: bool) -> dict | None:
    """Lay out one theme's board panel with its first quote that fits at the smallest size.

    Returns None when the panel is too small: for the name, or (`quote_needed`) for a quote.
    """
    inner_w = width - 2 * BOARD.frame
    counts = count_line(theme)
    room = (height - 2 * BOARD.frame - UNDER_TITLE - UNDER_COUNTS
            - text_height(theme["title"], title, inner_w, TITLE_LEADING, bold=True)
            - text_height(counts, SMALL, inner_w, TEXT_LEADING))
    if room < 0:
        return None
    panel = {"theme": theme, "title": theme["title"], "counts": counts, "description": "",
             "room": room, "inner_width": inner_w, "quotes": []}
    for quote in theme["quotes"]:
        part = {"text": quoted(quote["text"]), "source": "— " + quote["role"], "quote": quote}
        if _block_height(part, QUOTE_SIZES[-1], inner_w) <= room:
            panel["quotes"] = [part]
            return panel
    return None if quote_needed and theme["quotes"] else panel


def _balanced(options: list[tuple]) -> tuple:
    """Of (quote size, name size, …) options, return the one with the largest name among
    those whose quotes are at most one step (2 pt) smaller than the largest quotes."""
    best = max(o[0] for o in options)
    return max((o for o in options if o[0] >= best - 2), key=lambda o: o[1])


def _board_sheet(themes: list[dict], top: float, quote_needed: bool) -> list[dict] | None:
    """Lay out the panels of one board sheet below a heading `top` mm tall.

    The names share one size and the quotes another: of the name sizes that set every name
    in two lines (or, failing that, any), the largest that leaves the quotes at most 2 pt
    smaller than they could be.
    """
    cols, rows = BOARD_GRIDS[len(themes)]
    rows = math.ceil(len(themes) / cols)
    panel_h = (BOARD.inner_height - top - BOARD.gap * (rows - 1)) / rows
    places = []
    for r in range(rows):
        in_row = len(themes[r * cols:(r + 1) * cols])
        width = (BOARD.inner_width - BOARD.gap * (in_row - 1)) / in_row
        places += [(BOARD.margin + c * (width + BOARD.gap),
                    BOARD.margin + top + r * (panel_h + BOARD.gap), width)
                   for c in range(in_row)]
    narrowest = min(w for _, _, w in places) - 2 * BOARD.frame
    biggest = _title_size([t["title"] for t in themes], BOARD_TITLES, narrowest)
    options: list[tuple[int, int, list[dict]]] = []
    for title in [s for s in BOARD_TITLES if s <= biggest]:
        found = [_board_panel(t, w, panel_h, title, quote_needed)
                 for t, (_, _, w) in zip(themes, places, strict=True)]
        panels = [p for p in found if p is not None]
        if len(panels) < len(found):
            continue
        size = next((s for s in QUOTE_SIZES if all(
            _quotes_height(p["quotes"], s, p["inner_width"]) <= p["room"] for p in panels)),
            QUOTE_SIZES[-1])
        options.append((size, title, panels))
    if not options:
        return None
    size, title, panels = _balanced(options)
    # The counts go at the foot of the panel, under the space the quote leaves.
    foot = (f"{type_style(SMALL, TEXT_LEADING)}; position: absolute; margin: 0; "
            f"{foot_style(BOARD.padding)}")
    for panel, (x, y, w) in zip(panels, places, strict=True):
        panel.update(style=BOARD.panel_style(x, y, w, panel_h),
                     title_size=title, title_style=type_style(title, TITLE_LEADING),
                     quote_size=size, quote_style=type_style(size, QUOTE_LEADING),
                     counts_style=foot)
    return panels


def _even_groups(items: list, groups: int) -> list[list]:
    """Split `items` in order into `groups` runs whose lengths differ by one at most."""
    size, extra = divmod(len(items), groups)
    out, start = [], 0
    for g in range(groups):
        end = start + size + (g < extra)
        out.append(items[start:end])
        start = end
    return out


def _board_group(content: dict, group: list[dict], number: int, count: int,
                 quote_needed: bool) -> dict | None:
    """Lay out one sheet of the board: its heading as large as leaves the panels room."""
    heading, line = board_heading(content, number, count)
    biggest = _title_size([heading], HEADINGS, BOARD.inner_width)
    for size in [s for s in HEADINGS if s <= biggest]:
        top = _heading_height(heading, size, line, BOARD.inner_width) + BOARD.gap
        panels = _board_sheet(group, top, quote_needed)
        if panels is not None:
            return {"kind": BOARD.kind, "style": BOARD.style(), "heading": heading,
                    "heading_size": size, "heading_style": type_style(size, TITLE_LEADING),
                    "line": line, "panels": panels, "prompts": ""}
    return None


def board_sheets(content: dict) -> list[dict]:
    """Return the theme board: every theme on one A3 sheet when their quotes read there.

    Each theme's panel shows its name (36 pt or more), its story count and its first quote
    (in the workshop's order) that fits at 20 pt or more; the panels fill the sheet. Where a
    theme has no quote short enough, the themes share out over more sheets, so each panel is
    bigger; a theme whose every quote is too long even for a sheet of its own is shown
    without one (its own poster has them all).
    """
    themes = content["themes"]
    counts = range(math.ceil(len(themes) / max(BOARD_GRIDS)), len(themes) + 1)
    for count, quote_needed in [(c, True) for c in counts] + [(len(themes), False)]:
        sheets = [_board_group(content, group, number, count, quote_needed)
                  for number, group in enumerate(_even_groups(themes, count), start=1)]
        if all(sheets):
            return [s for s in sheets if s is not None]
    return []  # no themes


def _theme_top(panel: dict, title: int, width: float) -> float:
    """Return the height of a theme poster panel's lines above its quotes, in mm."""
    top = text_height(panel["title"], title, width, TITLE_LEADING, bold=True) + UNDER_TITLE
    for line in (panel["counts"], panel["description"]):
        if line:
            top += text_height(line, LARGE, width, TEXT_LEADING) + UNDER_COUNTS
    return top


def _theme_pages(content: dict, theme: dict, title: int) -> dict:
    """Lay out one theme's poster sheets with its name at `title` pt."""
    sheet, width = THEME_POSTER, THEME_POSTER.inner_width
    prompts_h = text_height(PROMPTS, LARGE, width, TEXT_LEADING) + ABOVE_PROMPTS
    total = len(content["themes"])
    heads, rooms, tops = [], [], []
    for first in (True, False):
        heading = f"Theme {theme['number']} of {total}" + ("" if first else " · continued")
        panel = {"theme": theme, "title": theme["title"],
                 "counts": count_line(theme) if first else "",
                 "description": " ".join(theme["description"].split()) if first else ""}
        top = (_heading_height(heading, LARGE, content["workshop"]["title"], width)
               + sheet.gap)
        room = sheet.inner_height - top - prompts_h - _theme_top(panel, title, width)
        if room < 0:  # a description longer than a poster holds: it is in the pack
            panel["description"] = ""
            room = sheet.inner_height - top - prompts_h - _theme_top(panel, title, width)
        heads.append((heading, panel))
        tops.append(top)
        rooms.append(room)

    def fits_a_sheet(part: dict) -> bool:
        return _block_height(part, QUOTE_SIZES[-1], width) <= rooms[1]

    pages: list[list[dict]] = [[]]
    for quote in theme["quotes"]:
        for part in _parts(quote, fits_a_sheet):
            room = rooms[min(len(pages) - 1, 1)]
            # A part that does not fit goes on the next sheet (from the first sheet even when
            # no quote is on it yet: its name and description may leave too little room).
            if ((pages[-1] or len(pages) == 1)
                    and _quotes_height(pages[-1] + [part], QUOTE_SIZES[-1], width) > room):
                pages.append([])
            pages[-1].append(part)
    size = next((s for s in QUOTE_SIZES if all(
        _quotes_height(page, s, width) <= rooms[min(n, 1)]
        for n, page in enumerate(pages))), QUOTE_SIZES[-1])
    sheets = []
    for n, page in enumerate(pages):
        heading, head = heads[min(n, 1)]
        top = tops[min(n, 1)]
        panel = {**head, "quotes": page,
                 "style": sheet.panel_style(sheet.margin, sheet.margin + top, width,
                                            sheet.inner_height - top - prompts_h),
                 "title_size": title, "title_style": type_style(title, TITLE_LEADING),
                 "quote_size": size, "quote_style": type_style(size, QUOTE_LEADING),
                 "counts_style": type_style(LARGE, TEXT_LEADING)}
        sheets.append({"kind": sheet.kind, "style": sheet.style(), "heading": heading,
                       "heading_size": LARGE, "heading_style": type_style(LARGE, TITLE_LEADING),
                       "line": content["workshop"]["title"], "panels": [panel],
                       "prompts": PROMPTS, "prompts_style": box_style(
                           sheet.margin, sheet.height - sheet.margin - prompts_h, width,
                           prompts_h)})
    return {"sheets": sheets, "size": size, "title": title}


def theme_poster_sheets(content: dict) -> list[dict]:
    """Return one A3 poster a theme: its name, counts, description and every quote.

    The quotes share one size, the largest that fits (20 pt or more); quotes that do not fit
    at 20 pt go on to a second sheet of the same theme, a quote too long for a whole sheet
    in parts. The name is as large as it can be while the quotes are at most 2 pt smaller
    than they could be, on the fewest sheets. The foot of each sheet asks for sticky notes on
    the three questions.
    """
    sheets = []
    for theme in content["themes"]:
        biggest = _title_size([theme["title"]], THEME_TITLES, THEME_POSTER.inner_width)
        laid = [_theme_pages(content, theme, t) for t in THEME_TITLES if t <= biggest]
        fewest = min(len(o["sheets"]) for o in laid)
        sheets += _balanced([(o["size"], o["title"], o["sheets"]) for o in laid
                             if len(o["sheets"]) == fewest])[2]
    return sheets
