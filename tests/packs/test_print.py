"""Printing for a room (issue 24): posters that read from across it, four quote cards to an A4
sheet with cut marks, type a mixed room can read, half a page to write in per theme, and large
print — as real WeasyPrint PDFs, measured.

Each check reads the PDF (page sizes, page counts, the size in points of every run of text,
with pypdf), WeasyPrint's own layout of it (where every line of a card or a panel falls), or
its first pages rendered to PNG at 50 dpi (where the ink is; never exact pixels). The
expected figures are this file's own, from the issue.
"""

from __future__ import annotations

import copy
import io
import logging
import math
import subprocess
import zipfile

import pytest
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select

from storyhub.extensions import db
from storyhub.packs import exports, layout, render
from storyhub.packs.models import WorkshopPack
from tests.support.factories import make_pack, make_workshop, withdraw_consent

pytestmark = pytest.mark.slow

PX_MM = 25.4 / 96  # millimetres in a CSS pixel, WeasyPrint's unit
# Each printed format: its page (width, height in pt) and the smallest type on it (pt).
PAGES = {
    "pdf": ((595, 842), 12),  # A4: body 12 pt or more
    "pdf-large": ((595, 842), 18),  # large print
    "cards": ((595, 842), 14),  # four A6 cards to an A4 sheet
    "cards-a6": ((298, 420), 14),
    "cards-large": ((595, 842), 18),
    "poster": ((1191, 842), 20),  # A3 landscape: quotes 20 pt or more
    "posters": ((842, 1191), 20),  # A3 portrait, one a theme
}
POSTER_TITLE_PT = 36  # a theme's name on a poster
PACK_QUOTE_PT = 13
HALF_A4_MM = 148.5  # write-in space per theme, at least


@pytest.fixture
def prepared(themed_instance):
    return themed_instance


@pytest.fixture
def data(themed_instance) -> dict:
    return themed_instance.data


def text_runs(pdf: bytes) -> list[list[tuple[str, float]]]:
    """Return each page's runs of text with their size in points."""
    pages = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        runs: list[tuple[str, float]] = []

        def visit(text, cm, tm, _font, size, runs=runs):
            if text.strip():
                scale = math.hypot(tm[0], tm[1]) * math.hypot(cm[0], cm[1])
                runs.append((" ".join(text.split()), round(size * scale, 2)))

        page.extract_text(visitor_text=visit)
        pages.append(runs)
    return pages


def words(text: str) -> str:
    """Return `text`'s words, without quote marks, one space apart."""
    return " ".join(text.replace("“", " ").replace("”", " ").split())


def first_page_png(pdf: bytes, tmp_path, name: str) -> Image.Image:
    (tmp_path / f"{name}.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", "-singlefile",
                    str(tmp_path / f"{name}.pdf"), str(tmp_path / name)], check=True)
    with Image.open(tmp_path / f"{name}.png") as image:
        return image.convert("L")


def ink_box(image: Image.Image) -> tuple[float, float]:
    """Return the share of the page's width and height that its ink spans."""
    left, top, right, bottom = image.point(lambda v: 255 if v < 200 else 0).getbbox()
    return (right - left) / image.width, (bottom - top) / image.height


# -- reading WeasyPrint's layout ------------------------------------------------------------

def _classes(box) -> set[str]:
    element = getattr(box, "element", None)
    return set((element.get("class") or "").split()) if element is not None else set()


def _walk(box):
    box = getattr(box, "_box", box)  # an absolutely placed box sits in a placeholder
    yield box
    for child in getattr(box, "children", ()):
        yield from _walk(child)


def overflows(document) -> list[str]:
    """Say where any line of a card or panel falls outside it, or over the line at its foot
    (a card's source, a board panel's counts), or a heading runs into the panels."""
    from weasyprint.formatting_structure.boxes import BlockBox, LineBox

    found = []
    for number, page in enumerate(document.pages, start=1):
        boxes = list(_walk(page._page_box))
        panels = [b for b in boxes if isinstance(b, BlockBox) and {"card", "panel"} & _classes(b)]
        headings = [b for b in boxes if b.element_tag == "h1" or "line" in _classes(b)]
        if panels and headings:
            foot = max(h.position_y + h.margin_height() for h in headings)
            if foot > min(p.position_y for p in panels) + 0.5:
                found.append(f"page {number}: the heading runs into the panels")
        for panel in panels:
            top, left = panel.content_box_y(), panel.content_box_x()
            bottom, right = top + panel.height, left + panel.width
            inside = list(_walk(panel))
            for line in (b for b in inside if isinstance(b, LineBox)):
                if (line.position_y + line.height > bottom + 0.5
                        or line.position_x + line.width > right + 0.5):
                    found.append(f"page {number}: a line runs out of its {_classes(panel)}")
            feet = [b for b in inside if {"quote-source", "counts"} & _classes(b)
                    and b.style["position"] == "absolute"]
            for quote in (b for b in inside if b.element_tag == "blockquote"):
                end = quote.content_box_y() + quote.height
                if any(end > f.position_y + 0.5 for f in feet):
                    found.append(f"page {number}: a quote runs over the line at its foot")
    return found


def texts(document, tag: str) -> list[tuple[str, float]]:
    """Return the text of each `tag` element laid out, in order, with its type size (pt)."""
    from weasyprint.formatting_structure.boxes import TextBox

    found = []
    for page in document.pages:
        for box in _walk(page._page_box):
            if box.element_tag == tag and not isinstance(box, TextBox):
                runs = [b for b in _walk(box) if isinstance(b, TextBox)]
                if runs:
                    found.append((" ".join(r.text for r in runs),
                                  round(min(r.style["font_size"] for r in runs) * 0.75, 2)))
    return found


# -- a real pack -----------------------------------------------------------------------------

@pytest.mark.one_database  # rendering; the pack's rows are covered by test_build.py
def test_a_pack_prints_for_a_room_in_every_format(app, client, auth, data, tmp_path,
                                                   caplog):
    from tests.support.factories import PASSWORD

    workshop_id = make_workshop(app, data)
    make_pack(app, workshop_id, data["facilitator"])
    assert auth.login("lead-facilitator", PASSWORD).status_code == 302
    url = f"/packs/{workshop_id}"
    page = client.get(url).get_data(as_text=True)
    for fmt in [*exports.FORMATS, "zip"]:  # every format is in the version's download list
        assert f'href="{url}/packs/1/{fmt}"' in page, fmt
    caplog.set_level(logging.WARNING, logger="storyhub.packs.render")
    archive = zipfile.ZipFile(io.BytesIO(client.get(f"{url}/packs/1/zip").data))
    assert not caplog.records  # nothing fetched from outside StoryHub's own files
    with app.test_request_context():
        pack = db.session.scalar(select(WorkshopPack))
        content = pack.content
        names = {fmt: exports.filename(pack, exports.FORMATS[fmt][0], exports.FORMATS[fmt][1])
                 for fmt in exports.FORMATS}
        pdfs = {fmt: archive.read(names[fmt]) for fmt in PAGES}
        pack_layout = render.document_for("pack", pack.markdown, "pack")
    themes = content["themes"]
    quotes = [q for t in themes for q in t["quotes"]]
    assert set(names.values()) <= set(archive.namelist())
    # The same version gives the same bytes, downloaded alone or in the ZIP.
    assert client.get(f"{url}/packs/1/cards").data == pdfs["cards"]

    runs = {fmt: text_runs(pdf) for fmt, pdf in pdfs.items()}
    for fmt, ((width, height), smallest) in PAGES.items():
        reader = PdfReader(io.BytesIO(pdfs[fmt]))
        for sheet in reader.pages:
            assert (round(float(sheet.mediabox.width)), round(float(sheet.mediabox.height))
                    ) == (width, height), fmt
        sizes = [size for page_runs in runs[fmt] for _text, size in page_runs]
        assert min(sizes) >= smallest, (fmt, min(sizes))
        shown = words(" ".join(t for page_runs in runs[fmt] for t, _ in page_runs))
        if fmt != "poster":  # the board shows one quote a theme; the rest show every quote
            for quote in quotes:
                for part in words(quote["text"]).split()[:8], words(quote["text"]).split()[-8:]:
                    assert " ".join(part) in shown, (fmt, quote["code"])

    # The pack: quotes at 13 pt or more, and half a page to write in after each theme.
    for quote in quotes:
        opening = "“" + " ".join(quote["text"].split()[:3])
        sizes = [size for page_runs in runs["pdf"] for text, size in page_runs
                 if text.startswith(opening)]
        assert sizes and min(sizes) >= PACK_QUOTE_PT, quote["code"]
    write_ins = 0
    for sheet in pack_layout.pages:
        boxes = [b for b in _walk(sheet._page_box) if "write-box" in _classes(b)]
        if boxes:
            write_ins += 1
            assert len(boxes) == 3
            assert sum(b.border_height() for b in boxes) * PX_MM >= HALF_A4_MM
    assert write_ins == len(themes)

    # Four cards to an A4 sheet, with cut marks where the sheet is cut in half each way.
    sheets = layout.card_sheets("cards", content)
    assert len(PdfReader(io.BytesIO(pdfs["cards"])).pages) == len(sheets)
    assert all(sum(c["span"] for c in s["cards"]) == 4 for s in sheets[:-1])
    if len(quotes) >= 4:
        assert sum(c["span"] for c in sheets[0]["cards"]) == 4
    image = first_page_png(pdfs["cards"], tmp_path, "cards")
    per_mm = image.width / 210

    def ink(x: float, y: float, width: float, height: float) -> int:
        """Return the darkest grey in a part of the sheet (in mm from its top left)."""
        box = (x * per_mm, y * per_mm, (x + width) * per_mm, (y + height) * per_mm)
        return image.crop(tuple(round(v) for v in box)).getextrema()[0]

    edges = {"left": (0, 147, 11, 3), "right": (199, 147, 11, 3)}  # the cut across
    if sum(c["row"] == 0 for c in sheets[0]["cards"]) == 2:  # a cut down between two cards
        edges["top"] = (103.5, 0, 3, 11)
    for edge, (x, y, width, height) in edges.items():
        assert ink(x, y, width, height) < 200, f"no cut mark at the {edge} edge"
    assert ink(40, 0, 30, 8) > 250 and ink(0, 60, 8, 30) > 250  # and none elsewhere
    assert len(PdfReader(io.BytesIO(pdfs["cards-large"])).pages) == len(
        layout.card_sheets("cards-large", content))

    # The board fills its sheet, names 36 pt or more; one poster (or more) for each theme.
    for fmt in ("poster", "posters"):
        image = first_page_png(pdfs[fmt], tmp_path, fmt)
        wide, high = ink_box(image)
        assert wide > 0.85 and high > 0.85, (fmt, wide, high)  # margins aside
        for theme in themes:
            name = theme["title"].split()[0]
            assert any(size >= POSTER_TITLE_PT for page_runs in runs[fmt]
                       for text, size in page_runs if text.startswith(name)), (fmt, name)
    poster_pages = [" ".join(t for t, _ in page_runs) for page_runs in runs["posters"]]
    assert len(poster_pages) >= len(themes)
    for theme in themes:
        assert any(f"Theme {theme['number']} of {len(themes)}" in p for p in poster_pages)

    # A story withdrawn since: no format of the version is handed out, the new ones included.
    withdraw_consent(app, quotes[0]["story_id"])
    for fmt in ("pdf-large", "cards-a6", "cards-large", "posters"):
        assert client.get(f"{url}/packs/1/{fmt}").status_code == 409, fmt


# -- the longest quotes and names ------------------------------------------------------------

def _stretched(content: dict) -> dict:
    """Return `content` with its quotes made short, long and very long, one long name, and
    words that look like markup."""
    content = copy.deepcopy(content)
    said = " ".join(q["text"] for t in content["themes"] for q in t["quotes"]).split()
    lengths = [4, 30, 90, 160, 450, 12]
    for n, theme in enumerate(content["themes"][:3]):
        for k, quote in enumerate(theme["quotes"]):
            length = lengths[(n * 3 + k) % len(lengths)]
            quote["text"] = " ".join((said * 4)[n * 7 + k:n * 7 + k + length])
    content["themes"][0]["quotes"][0]["text"] = "I said <b>*no*</b> & [NAME] {left} #3 _x_"
    content["themes"][0]["title"] = ("What happens on the first day out of prison when "
                                     "there is nowhere to sleep")
    content["themes"][-1]["quotes"][-1]["text"] += " Unbelievablyunbreakablewordwithnospaces" * 2
    return content


def _short(content: dict, themes: int) -> dict:
    """Return `content` with `themes` themes, each quoting a sentence or two."""
    content = copy.deepcopy(content)
    first = content["themes"][0]
    names = ["Somewhere to live", "Trust", "Peer mentors", "Mental health", "Food and fares",
             "Work", "Family", "Being believed"]
    content["themes"] = [{**copy.deepcopy(first), "number": n + 1, "title": names[n]}
                         for n in range(themes)]
    for n, theme in enumerate(content["themes"]):
        for quote in theme["quotes"]:
            quote["text"] = " ".join(quote["text"].split()[:8 + n])
    return content


@pytest.mark.one_database  # rendering only
def test_long_quotes_fit_or_continue_and_never_run_over(app, data):
    workshop_id = make_workshop(app, data)
    make_pack(app, workshop_id, data["facilitator"])
    with app.test_request_context():
        stretched = _stretched(db.session.scalar(select(WorkshopPack)).content)
        laid = {piece: render.document_for(piece, render.markdown_for(piece, stretched,
                                                                      version=1), piece)
                for piece in ("cards", "cards-a6", "cards-large", "poster", "posters")}
        boards = {count: render.document_for("poster", render.markdown_for(
            "poster", _short(stretched, count), version=1), "poster") for count in (4, 8)}
    quotes = [q for t in stretched["themes"] for q in t["quotes"]]
    for piece, document in laid.items():
        assert overflows(document) == [], piece
        said = texts(document, "blockquote")
        assert min(size for _, size in said) >= PAGES[piece][1], piece
        if piece == "poster":
            continue
        # Every word of every quote, in order, across the cards or sheets it continues on.
        # (Spaces aside: a word too long for a line is broken inside.)
        shown = "".join(words(" ".join(text for text, _ in said)).split())
        for quote in quotes:
            assert "".join(words(quote["text"]).split()) in shown, (piece, quote["code"])
    cards = [c for s in layout.card_sheets("cards-a6", stretched) for c in s["cards"]]
    assert any(c["parts"] > 1 for c in cards)  # a 450-word quote continues on the next card
    assert any(c["span"] == 2 for s in layout.card_sheets("cards", stretched)
               for c in s["cards"])  # on the A4 sheet, a long quote takes a row first
    names = texts(laid["posters"], "h2")
    assert all(size >= POSTER_TITLE_PT for _, size in names)
    # What the transcript says prints as said: markup characters are text, not markup.
    for document in laid.values():
        assert any("<b>*no*</b> & [NAME] {left} #3 _x_" in text
                   for text, _ in texts(document, "blockquote"))
    # Short quotes: four themes on one board sheet, eight on two, the panels filling them.
    from weasyprint.formatting_structure.boxes import BlockBox

    for count, sheets in ((4, 1), (8, 2)):
        board = boards[count]
        assert overflows(board) == [] and len(board.pages) == sheets
        for sheet in board.pages:
            panels = [b for b in _walk(sheet._page_box)
                      if isinstance(b, BlockBox) and "panel" in _classes(b)]
            assert len(panels) == count // sheets
            area = sum(p.border_width() * p.border_height() for p in panels)
            assert area / (sheet.width * sheet.height) > 0.7
