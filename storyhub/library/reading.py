"""Read one library story as staff do: redacted, speakers unnamed, every read and play audited."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from markupsafe import Markup, escape
from sqlalchemy import select

from .. import audit, policy
from ..accounts.models import User
from ..extensions import db
from ..stories.models import Story
from ..themes.models import Passage
from ..transcripts.models import Segment, Word
from ..transcripts.text import tokens
from .models import CurationState, LibraryEntry
from .service import transcript_of


def get_entry(code: str) -> LibraryEntry:
    entry = db.session.scalar(select(LibraryEntry).where(LibraryEntry.code == code))
    if entry is None:
        raise LookupError(code)
    return entry


def readable(actor: User, code: str,
             action: policy.Action = policy.Action.LIBRARY) -> tuple[Story, LibraryEntry]:
    """Return the library story with this code if `actor` may have it; else raise."""
    entry = get_entry(code)
    policy.require(actor, entry.story, action,
                   curated=entry.state is CurationState.APPROVED)
    return entry.story, entry


@dataclass
class Line:
    """One stretch of the transcript as staff read it."""

    start: float
    speaker: str
    words: list[tuple[str, float, float]]

    @property
    def words_html(self) -> Markup:
        """The words as timed spans for the reader's player (built here: a story page has
        thousands, and a template loop over them took half the page's time)."""
        return Markup("".join(  # noqa: S704 - every word is escaped
            f'<span class="word" data-start="{start:.2f}" data-end="{end:.2f}">'
            f'{escape(text)}</span> ' for text, start, end in self.words))


def transcript_lines(story: Story) -> list[Line]:
    """Return the redacted transcript, speakers named only "Speaker 1", "Speaker 2"…

    Reporters may have named the speakers (even with real names): staff never see those.
    """
    transcript = transcript_of(story.id)
    if transcript is None:
        return []
    segments = db.session.execute(
        select(Segment.id, Segment.start, Segment.speaker, Segment.text)
        .where(Segment.transcript_id == transcript.id).order_by(Segment.position)).all()
    words: dict[int, list] = defaultdict(list)
    for row in db.session.execute(
            select(Word.segment_id, Word.id, Word.text, Word.start, Word.end, Word.probability,
                   Word.edited, Word.redaction, Word.checked)
            .join(Segment, Segment.id == Word.segment_id)
            .where(Segment.transcript_id == transcript.id).order_by(Word.position)):
        words[row.segment_id].append(row)
    speakers: dict[str, str] = {}
    lines = []
    for segment_id, start, speaker, text in segments:
        label = speakers.setdefault(speaker, f"Speaker {len(speakers) + 1}")
        shown = [(t.text, t.start, t.end) for t in tokens(words[segment_id],
                                                          policy.Form.REDACTED)]
        if not shown:  # a segment typed in without word times
            shown = [(w, start, start) for w in text.split()]
        lines.append(Line(start, label, shown))
    return lines


def highlights(entry: LibraryEntry) -> list[Passage]:
    if not entry.highlights:
        return []
    found = {p.id: p for p in db.session.scalars(select(Passage).where(
        Passage.id.in_(entry.highlights), Passage.story_id == entry.story_id))}
    return [found[i] for i in entry.highlights if i in found]


def listened(actor: User, story: Story) -> None:
    audit.record("library.play", actor.id, "story", story.id)


def read(actor: User, story: Story) -> None:
    audit.record("library.read", actor.id, "story", story.id)


def recorded_month(day: date | datetime) -> str:
    return f"{day:%B %Y}"
