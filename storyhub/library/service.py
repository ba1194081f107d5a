"""Library verbs: curate a story (save, approve, retire) and keep the search index true to it.

Who may see what is the policy's (`Action.LIBRARY`, `LIBRARY_LISTEN`, `CURATE`): a story is in
the library only while a facilitator's approval stands and its consent covers the library and
is in force, and staff always get it redacted. Finding approved stories is finding.py's,
reading one reading.py's.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence

from sqlalchemy import delete, select

from .. import audit, policy, signals
from ..accounts.models import User
from ..config import settings
from ..database import utcnow
from ..extensions import db
from ..stories.models import Story
from ..stories.service import CODE_ALPHABET
from ..themes.models import Passage
from ..themes.service import embed_missing, embedding_model_id, passages_for
from ..transcripts.models import Transcript
from ..transcripts.text import segment_text
from . import publishing, search
from .models import CurationState, LibraryEntry

logger = logging.getLogger(__name__)
SUMMARY_MAX = 1200
MAX_HIGHLIGHTS = 5


class LibraryError(ValueError):
    """A curation request the user can fix; the message says how."""


def entry_of(story_id: int) -> LibraryEntry | None:
    return db.session.get(LibraryEntry, story_id)


def transcript_of(story_id: int) -> Transcript | None:
    return db.session.scalar(select(Transcript).where(Transcript.story_id == story_id))


def stage(story: Story) -> str:
    """Where the story is on its way to the library: a sentence for the curation panel."""
    entry = entry_of(story.id)
    if entry is not None:
        return entry.state.label
    transcript = transcript_of(story.id)
    if transcript is None or transcript.reviewed_at is None:
        return "Waiting for the reporter to review the transcript"
    if policy.waiting_redactions(story):
        return "Waiting for the reporter to decide the suggested redactions"
    return "Reviewed, not yet in the library"


def _new_code() -> str:
    while True:
        code = "LS-" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))
        if db.session.scalar(select(LibraryEntry.story_id).where(LibraryEntry.code == code)) \
                is None:
            return code


def passages_of(story_id: int) -> list[Passage]:
    return list(db.session.scalars(select(Passage).where(Passage.story_id == story_id)
                                   .order_by(Passage.start)))


def save_curation(story: Story, actor: User, summary: str,
                  highlights: Sequence[int] = ()) -> LibraryEntry:
    """Keep the curator's summary and highlight passages (a draft until approved)."""
    policy.require(actor, story, policy.Action.CURATE)
    summary = " ".join(summary.split())
    if len(summary) > SUMMARY_MAX:
        raise LibraryError(f"Keep the summary to {SUMMARY_MAX} characters or fewer; it is "
                           f"{len(summary)}.")
    if len(highlights) > MAX_HIGHLIGHTS:
        raise LibraryError(f"Pick at most {MAX_HIGHLIGHTS} highlight passages.")
    if story.storyteller.named_in(summary):
        raise LibraryError("The summary holds the storyteller's name. Staff must not be able to "
                           "tell who told the story: write it without the name.")
    transcript = transcript_of(story.id)
    if transcript is not None and transcript.reviewed_at is not None:
        _ensure_passages(story, transcript)  # the passages to pick highlights from
    known = {p.id for p in passages_of(story.id)}
    if not set(highlights) <= known:
        raise LibraryError("A highlight passage is not part of this story. Reload the page "
                           "and pick again.")
    entry = entry_of(story.id)
    if entry is None:
        entry = LibraryEntry(story_id=story.id, code=_new_code(), state=CurationState.DRAFT)
        db.session.add(entry)
    entry.summary, entry.highlights = summary, list(highlights)
    entry.curated_by_id = actor.id
    entry.changed_at = utcnow()
    if entry.state is CurationState.APPROVED:
        _index(story, entry)
    db.session.flush()
    audit.record("library.save", actor.id, "story", story.id)
    return entry


def approve(story: Story, actor: User) -> LibraryEntry:
    """Put the story in the staff library (its transcript reviewed, its consent covering it)."""
    policy.require(actor, story, policy.Action.CURATE)
    transcript = transcript_of(story.id)
    if transcript is None or transcript.reviewed_at is None:
        raise LibraryError("The transcript has not been reviewed yet. The reporter must check "
                           "it and mark it reviewed before the story can go in the library.")
    pending = policy.waiting_redactions(story)
    if pending:
        # Not the words themselves: the facilitator reads the transcript redacted too.
        raise LibraryError(
            f"StoryHub suggests redacting {pending} more "
            f"{'name or place' if pending == 1 else 'names or places'} in this transcript, "
            "and nobody has redacted or dismissed "
            f"{'it' if pending == 1 else 'them'} yet. The reporter who gathered the story must "
            "decide on the transcript page before it can go in the staff library.")
    entry = entry_of(story.id)
    if entry is None or not entry.summary:
        raise LibraryError("Write a short summary for staff first, then approve.")
    # As packs check their quotes: staff read the title and summary beside the transcript.
    for what, text in (("title", story.title), ("summary", entry.summary)):
        if story.storyteller.named_in(text):
            raise LibraryError(
                f"The story's {what} holds the storyteller's name, so it cannot go in the staff "
                "library: staff must not be able to tell who told it. "
                + ("Write the summary without the name." if what == "summary" else
                   "Give the story a title without the name on its page first."))
    if entry.state is CurationState.APPROVED:
        raise LibraryError("This story is already in the staff library.")
    _ensure_passages(story, transcript)
    entry.embedding = search.mean_vector([p.embedding for p in passages_of(story.id)
                                          if p.embedding])
    entry.state, entry.approved_at, entry.retired_at = CurationState.APPROVED, utcnow(), None
    entry.curated_by_id = actor.id
    entry.changed_at = utcnow()
    _index(story, entry, transcript)
    db.session.flush()
    audit.record("library.approve", actor.id, "story", story.id)
    logger.info("Story %s approved for the library", story.id)
    return entry


def retire(story: Story, actor: User) -> LibraryEntry:
    """Take the story out of the staff library (it can be approved again)."""
    policy.require(actor, story, policy.Action.CURATE)
    entry = entry_of(story.id)
    if entry is None or entry.state is not CurationState.APPROVED:
        raise LibraryError("This story is not in the staff library, so there is nothing to "
                           "retire.")
    entry.state, entry.retired_at, entry.changed_at = CurationState.RETIRED, utcnow(), utcnow()
    search.remove_story(story.id)
    db.session.flush()
    audit.record("library.retire", actor.id, "story", story.id)
    return entry


def _ensure_passages(story: Story, transcript: Transcript) -> None:
    """Give the story passages with embeddings (as a theme run would, and reused by it)."""
    rows = passages_for(story, transcript)
    model_id = embedding_model_id()
    todo = [p for p in rows if p.embedding is None or p.embedding_model != model_id]
    if todo:
        _vectors, added = embed_missing([p.text for p in todo], [None] * len(todo),
                                        settings().theme_embedding_model,
                                        lambda _progress: None)
        for index, vector in added.items():
            todo[index].embedding, todo[index].embedding_model = vector, model_id
    db.session.flush()


def body_text(transcript: Transcript | None) -> str:
    """The transcript as staff read it (redacted), for the full-text index."""
    if transcript is None:
        return ""
    return "\n".join(segment_text(s, policy.Form.REDACTED) for s in transcript.segments)


def _index(story: Story, entry: LibraryEntry, transcript: Transcript | None = None) -> None:
    search.index_story(story.id, story.title, entry.summary,
                       body_text(transcript or transcript_of(story.id)))


def rebuild_search() -> int:
    """Rebuild the full-text index from the approved stories; return how many."""
    search.clear_index()
    count = 0
    for entry in db.session.scalars(select(LibraryEntry).where(
            LibraryEntry.state == CurationState.APPROVED)):
        _index(entry.story, entry)
        count += 1
    search.forget_means()
    return count


@signals.transcript_changed.connect
@signals.story_renamed.connect
def _follow_transcript(story_id: int, **_kwargs) -> None:
    """Index the new (redacted) words or title of an approved story at once."""
    entry = entry_of(story_id)
    if entry is not None and entry.state is CurationState.APPROVED:
        entry.changed_at = utcnow()
        _index(entry.story, entry)


@signals.story_erasing.connect
def _erase(story_id: int, scopes: list[str] | None = None, **_kwargs) -> list[str]:
    """Take the story out of the library when its library or transcription consent goes."""
    if policy.Action.LIBRARY not in policy.affected(scopes):
        return []
    search.purge_from_index(story_id)  # out of the index's files too, not only its answers
    db.session.execute(delete(LibraryEntry).where(LibraryEntry.story_id == story_id))
    publishing.forget_story(story_id)
    db.session.flush()
    return []
