"""A pack version as files: Markdown, HTML, PDF (and large print), quote cards, posters, and
the ZIP with clips."""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .. import policy
from ..extensions import db
from ..stories.models import Story
from ..themes.service import quote_clip
from . import render
from .models import WorkshopPack

logger = logging.getLogger(__name__)

# Each download: (piece rendered, file kind, media type), in the order the ZIP holds them.
FORMATS = {
    "md": ("pack", "md", "text/markdown"),
    "html": ("pack", "html", "text/html"),
    "pdf": ("pack", "pdf", "application/pdf"),
    "pdf-large": ("pack-large", "pdf", "application/pdf"),
    "cards": ("cards", "pdf", "application/pdf"),  # four A6 cards to an A4 sheet
    "cards-a6": ("cards-a6", "pdf", "application/pdf"),
    "cards-large": ("cards-large", "pdf", "application/pdf"),  # two A5 cards to an A4 sheet
    "poster": ("poster", "pdf", "application/pdf"),  # every theme, A3 landscape
    "posters": ("posters", "pdf", "application/pdf"),  # one A3 poster a theme
}
NAMES = {"pack": "pack", "pack-large": "pack-large-print", "cards": "quote-cards",
         "cards-a6": "quote-cards-a6", "cards-large": "quote-cards-large-print",
         "poster": "theme-board", "posters": "theme-posters"}


@dataclass
class Export:
    data: bytes
    filename: str
    mimetype: str


def slug(text: str) -> str:
    kept = "".join(c.lower() if c.isalnum() else "-" for c in text)
    return "-".join(filter(None, kept.split("-")))[:60] or "workshop"


def filename(pack: WorkshopPack, piece: str, kind: str) -> str:
    return f"{slug(pack.workshop.title)}-{NAMES[piece]}-v{pack.version}.{kind}"


def markdown_of(pack: WorkshopPack, piece: str) -> str:
    if render.PIECES[piece].template == render.PIECES["pack"].template:
        return pack.markdown  # as stored when the version was made
    return render.markdown_for(piece, pack.content, version=pack.version)


def export(pack: WorkshopPack, fmt: str) -> Export:
    """Render one format of a pack version."""
    piece, kind, mimetype = FORMATS[fmt]
    source = markdown_of(pack, piece)
    title = f"{pack.workshop.title} (version {pack.version})"
    if kind == "md":
        data = source.encode()
    elif kind == "html":
        data = render.html_for(piece, source, title).encode()
    else:
        data = render.pdf_for(piece, source, title)
    return Export(data, filename(pack, piece, kind), mimetype)


def clip_name(quote: dict) -> str:
    return f"clips/{quote['clip']}-story-{quote['code']}.m4a"


def write_zip(pack: WorkshopPack, actor, out: Path | BinaryIO) -> list[str]:
    """Write every format of the pack and one clip per playable quote to a ZIP at `out`.

    A clip goes in only where the story's consent covers playing it in workshops now; returns
    the codes of the stories whose clips were left out because it no longer does.
    """
    run = pack.workshop.run
    left_out: list[str] = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for fmt in FORMATS:
            made = export(pack, fmt)
            archive.writestr(made.filename, made.data)
        for theme in pack.content["themes"]:
            for quote in theme["quotes"]:
                if not quote["clip"]:
                    continue
                story = db.session.get(Story, quote["story_id"])
                if (story is None or run is None or quote["passage_id"] is None
                        or not policy.decide(actor, story, policy.Action.PLAY_CLIP).allowed):
                    left_out.append(quote["code"])
                    continue
                try:
                    clip, _ = quote_clip(run, quote["passage_id"], actor)
                except LookupError:
                    left_out.append(quote["code"])
                    continue
                # Clips are seconds long; M4A does not compress further.
                archive.writestr(clip_name(quote), clip.read_bytes(),
                                 compress_type=zipfile.ZIP_STORED)
    if left_out:
        logger.info("Pack %s ZIP: %d clip(s) left out, consent no longer covers them",
                    pack.id, len(left_out))
    return left_out
