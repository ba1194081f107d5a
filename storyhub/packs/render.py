"""Render a pack: Jinja templates in `workshops/` make Markdown; Markdown makes HTML and PDF.

The templates live in the top-level `workshops/` folder. A deployment overrides any of them by
putting a file of the same name in its own folder (`WORKSHOP_TEMPLATES`, by default the
instance's `workshops/`), which is searched first.

Every value a template prints is escaped for Markdown and HTML, so a transcript that says
`<script>` or `*` prints those characters rather than markup. PDFs are made by WeasyPrint with
a URL fetcher that reads only StoryHub's own static files (fonts and print stylesheets): a
pack can never fetch anything from the network or from elsewhere on the disk.
"""

from __future__ import annotations

import logging
import mimetypes
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import markdown
from flask import current_app, render_template
from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from ..config import settings
from . import layout
from .layout.measure import clock

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parents[2] / "workshops"
STATIC = Path(__file__).resolve().parents[1] / "static"
MARKDOWN_EXTENSIONS = ["tables", "attr_list", "md_in_html", "sane_lists"]



@dataclass(frozen=True)
class Piece:
    """What a printed piece is made from: its Markdown template, its print stylesheets (the
    later ones adding to the first) and, for pieces on fixed sheets, the layout that places
    its cards or panels (a function of the piece's name and the pack's content, giving the
    template `sheets`)."""

    template: str
    styles: tuple[str, ...]
    layout: Callable[[str, dict], list[dict]] | None = None


def _cards(piece: str, content: dict) -> list[dict]:
    return layout.card_sheets(piece, content)


def _posters(piece: str, content: dict) -> list[dict]:
    return (layout.theme_poster_sheets(content) if piece == "posters"
            else layout.board_sheets(content))


PIECES = {
    "pack": Piece("pack.md", ("css/pack-print.css",)),
    "pack-large": Piece("pack.md", ("css/pack-print.css", "css/pack-large.css")),
    "cards": Piece("cards.md", ("css/pack-cards.css",), _cards),
    "cards-a6": Piece("cards.md", ("css/pack-cards.css", "css/pack-cards-a6.css"), _cards),
    "cards-large": Piece("cards.md", ("css/pack-cards.css", "css/pack-cards-large.css"),
                         _cards),
    "poster": Piece("poster.md", ("css/pack-poster.css",), _posters),
    "posters": Piece("poster.md", ("css/pack-poster.css", "css/pack-theme-posters.css"),
                     _posters),
    "feedback": Piece("you-said-we-did.md", ("css/pack-print.css",)),
}

_SPECIAL = re.compile(r"([\\`*_\[\]{}#|~])")


def md_escape(value: Any) -> str:
    """Return `value` as Markdown text that shows exactly its characters, on one line."""
    if isinstance(value, Markup):
        return str(value)
    text = re.sub(r"\s+", " ", str(value))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text)


def template_folders() -> list[Path]:
    """Return the folders searched for workshop templates, the deployment's own first."""
    own = settings().workshop_templates or Path(current_app.instance_path, "workshops")
    return [Path(own), TEMPLATES]


def environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=ChoiceLoader([FileSystemLoader(str(p)) for p in template_folders()]),
        autoescape=False, finalize=md_escape, undefined=StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["clock"] = clock
    # Each item is escaped: the list's own markup is the only Markdown let through.
    env.filters["lines"] = lambda items: Markup(  # noqa: S704
        "\n".join(f"- {md_escape(i)}" for i in items))
    return env


def markdown_for(piece: str, content: dict, **extra: Any) -> str:
    """Return the Markdown of one piece of `PIECES` ("pack", "cards", "poster", …)."""
    made = PIECES[piece]
    if made.layout is not None:
        extra["sheets"] = made.layout(piece, content)
    text = environment().get_template(made.template).render(**content, **extra)
    # Blank lines collapse, so a template's layout does not change the output's bytes.
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def html_body(source: str) -> Markup:
    """Return the HTML of Markdown `source` (its values were escaped as it was rendered)."""
    return Markup(markdown.markdown(  # noqa: S704
        source, extensions=MARKDOWN_EXTENSIONS, output_format="html"))


def html_for(piece: str, source: str, title: str) -> str:
    """Return a whole HTML document for Markdown `source`, with its print stylesheets inlined."""
    style = Markup("\n".join(  # noqa: S704 (StoryHub's own files)
        (STATIC / css).read_text(encoding="utf-8") for css in PIECES[piece].styles))
    return render_template("packs/document.html", body=html_body(source), title=title,
                           style=style, piece=piece)


class StaticOnlyFetcher:
    """Give WeasyPrint StoryHub's own static files and refuse every other address."""

    def __init__(self) -> None:
        from weasyprint.urls import URLFetcher

        self._base = URLFetcher()
        self._fail_on_errors = False
        self.refused: list[str] = []

    def __call__(self, url: str):
        from weasyprint.urls import URLFetcherResponse

        parsed = urlparse(url)
        path = Path(unquote(parsed.path)).resolve() if parsed.scheme == "file" else None
        if path is None or not path.is_relative_to(STATIC) or not path.is_file():
            self.refused.append(url)
            raise ValueError(f"Packs may only use StoryHub's own files, not {url}")
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": kind}, 200)


def document_for(piece: str, source: str, title: str):
    """Return Markdown `source` laid out in pages by WeasyPrint (a `weasyprint.Document`)."""
    from weasyprint import HTML

    fetcher = StaticOnlyFetcher()
    document = HTML(string=html_for(piece, source, title),
                    base_url=STATIC.as_uri() + "/", url_fetcher=fetcher).render()
    if fetcher.refused:
        logger.warning("A %s PDF asked for %d address(es) outside StoryHub; refused", piece,
                       len(fetcher.refused))
    return document


def pdf_for(piece: str, source: str, title: str) -> bytes:
    """Return the PDF of Markdown `source` (A4 pack, sheets of cards, A3 posters)."""
    return document_for(piece, source, title).write_pdf()
