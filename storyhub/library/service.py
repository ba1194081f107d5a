"""Library verbs: curate a story (save, approve, retire), and find and read approved stories.

Who may see what is the policy's (`Action.LIBRARY`, `LIBRARY_LISTEN`, `CURATE`): a story is in
the library only while a facilitator's approval stands and its consent covers the library and
is in force, and staff always get it redacted. Lists and searches ask the same in SQL
(`policy.library_filter`), so a withdrawn story leaves every list, search and related list the
moment its consent is withdrawn, before its erasure job has run.
"""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
from flask import current_app
from markupsafe import Markup, escape
from sqlalchemy import ColumnElement, Select, and_, case, delete, false, func, or_, select

from .. import audit, policy, signals
from ..accounts.models import Site, User
from ..database import utcnow
from ..extensions import db
from ..redaction import service as redaction
from ..stories.consent import Scope
from ..stories.models import Consent, Recording, Story, Storyteller, StorytellerRole, StoryType
from ..stories.service import CODE_ALPHABET
from ..themes.models import Passage, Theme, ThemePassage
from ..transcripts.models import Segment, Transcript, Word
from ..transcripts.text import segment_text
from . import search
from .models import CurationState, LibraryEntry

logger = logging.getLogger(__name__)
PAGE_SIZE = 20
SUMMARY_MAX = 1200
MAX_HIGHLIGHTS = 5


class LibraryError(ValueError):
    """A curation request the user can fix; the message says how."""


# --- curation ---------------------------------------------------------------------------------

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
    if redaction.undecided(story):
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
    pending = len(redaction.undecided(story))
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
    from ..themes.service import embed_missing, embedding_model_id, passages_for

    rows = passages_for(story, transcript)
    model_id = embedding_model_id()
    todo = [p for p in rows if p.embedding is None or p.embedding_model != model_id]
    if todo:
        _vectors, added = embed_missing([p.text for p in todo], [None] * len(todo),
                                        current_app.config["THEME_EMBEDDING_MODEL"],
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
def _follow_transcript(story_id: int, **_kwargs) -> None:
    """Index the new (redacted) words of an approved story at once."""
    entry = entry_of(story_id)
    if entry is not None and entry.state is CurationState.APPROVED:
        entry.changed_at = utcnow()
        _index(entry.story, entry)


@signals.story_erasing.connect
def _erase(story_id: int, scopes: list[str] | None = None, **_kwargs) -> list[str]:
    """Take the story out of the library when its library or transcription consent goes."""
    if scopes is not None and not {Scope.STAFF_LIBRARY.value,
                                   Scope.TRANSCRIBE_ANALYSE.value} & set(scopes):
        return []
    search.remove_story(story_id)
    db.session.execute(delete(LibraryEntry).where(LibraryEntry.story_id == story_id))
    db.session.flush()
    return []


# --- finding ----------------------------------------------------------------------------------

@dataclass
class Filters:
    """What a reader narrowed the library to (all optional)."""

    theme: int | None = None
    role: StorytellerRole | None = None
    story_type: StoryType | None = None
    site: int | None = None
    recorded_from: date | None = None
    recorded_to: date | None = None
    tag: str | None = None

    @property
    def any(self) -> bool:
        return any(v not in (None, "") for v in vars(self).values())


def _shown(actor: User | None, action: policy.Action = policy.Action.LIBRARY,
           today: date | None = None) -> ColumnElement[bool]:
    """The stories `actor` may have in the library: approved, and consent as the policy says."""
    return and_(LibraryEntry.state == CurationState.APPROVED,
                policy.library_filter(actor, action, today))


def _narrowed(query: Select, filters: Filters) -> Select:
    """Narrow a select over library entries, joining a story or storyteller only when asked."""
    if filters.role is not None or any(v not in (None, "") for v in (
            filters.story_type, filters.site, filters.recorded_from, filters.recorded_to,
            filters.tag)):
        query = query.join(Story, Story.id == LibraryEntry.story_id)
    if filters.role is not None:
        query = query.join(Storyteller, Storyteller.id == Story.storyteller_id).where(
            Storyteller.role == filters.role)
    if filters.story_type is not None:
        query = query.where(Story.story_type == filters.story_type)
    if filters.site is not None:
        query = query.where(Story.site_id == filters.site)
    if filters.recorded_from is not None:
        query = query.where(Story.recorded_on >= filters.recorded_from)
    if filters.recorded_to is not None:
        query = query.where(Story.recorded_on <= filters.recorded_to)
    if filters.tag:
        query = query.where(("," + Story.tags + ",").contains("," + filters.tag + ","))
    if filters.theme is not None:
        query = query.where(LibraryEntry.story_id.in_(
            select(ThemePassage.story_id).where(ThemePassage.theme_id == filters.theme)))
    return query


def allowed_ids(actor: User, filters: Filters | None = None) -> Select:
    """A select of the ids of the library stories `actor` may read, narrowed by `filters`.

    Its one column is `id`. Every entry has a story and every story a storyteller, so those
    are joined only for a filter that needs them (a count of the whole library reads two
    tables, not four).
    """
    query = (select(LibraryEntry.story_id.label("id"))
             .join(Consent, Consent.story_id == LibraryEntry.story_id)
             .where(_shown(actor)))
    return _narrowed(query, filters or Filters())


@dataclass
class Card:
    """A story as the library lists it: nothing that says who told it."""

    story_id: int
    code: str
    title: str
    role: StorytellerRole
    story_type: StoryType
    site: str | None
    recorded_on: date
    seconds: float | None
    summary: str
    tags: list[str]
    themes: list[str] = field(default_factory=list)
    snippet: str | None = None
    start: float | None = None


@dataclass
class Page:
    cards: list[Card]
    total: int | None
    page: int
    pages: int | None


def cards_of(ids: Sequence[int]) -> list[Card]:
    """Return the cards of `ids`, in that order (the caller checked the policy for them)."""
    if not ids:
        return []
    rows = db.session.execute(
        select(Story.id, LibraryEntry.code, Story.title, Storyteller.role, Story.story_type,
               Site.name, Story.recorded_on, Recording.duration_seconds, LibraryEntry.summary,
               Story.tags)
        .join(LibraryEntry, LibraryEntry.story_id == Story.id)
        .join(Storyteller, Storyteller.id == Story.storyteller_id)
        .outerjoin(Site, Site.id == Story.site_id)
        .outerjoin(Recording, Recording.story_id == Story.id)
        .where(Story.id.in_(list(ids)))).all()
    by_id = {row[0]: Card(*row[:9], tags=[t for t in row[9].split(",") if t])
             for row in rows}
    themes = story_themes(list(by_id))
    for story_id, card in by_id.items():
        card.themes = themes.get(story_id, [])
    return [by_id[i] for i in ids if i in by_id]


def latest_theme_run_id() -> int | None:
    from ..themes.service import latest_run

    run = latest_run(done_only=True)
    return run.id if run is not None else None


def story_themes(story_ids: list[int]) -> dict[int, list[str]]:
    """Return each story's themes in the latest finished theme run (most passages first)."""
    run_id = latest_theme_run_id()
    if run_id is None or not story_ids:
        return {}
    counts = db.session.execute(
        select(ThemePassage.story_id, Theme.label, func.count())
        .join(Theme, Theme.id == ThemePassage.theme_id)
        .where(ThemePassage.run_id == run_id, ThemePassage.story_id.in_(story_ids),
               Theme.hidden.is_(False))
        .group_by(ThemePassage.story_id, Theme.label)).all()
    found: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for story_id, label, count in counts:
        found[story_id].append((-count, label))
    return {story_id: [label for _n, label in sorted(pairs)][:4]
            for story_id, pairs in found.items()}


def theme_choices() -> list[tuple[int, str]]:
    run_id = latest_theme_run_id()
    if run_id is None:
        return []
    return [(t.id, t.label) for t in db.session.scalars(
        select(Theme).where(Theme.run_id == run_id, Theme.hidden.is_(False))
        .order_by(Theme.position, Theme.number))]


def list_cards(actor: User, filters: Filters, page: int = 1) -> Page:
    """Return a page of the library, newest approval first."""
    allowed = allowed_ids(actor, filters)
    total = db.session.scalar(select(func.count()).select_from(allowed.subquery())) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    ids = list(db.session.scalars(
        allowed.order_by(LibraryEntry.approved_at.desc(), LibraryEntry.story_id.desc())
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)))
    return Page(cards_of(ids), total, page, pages)


def search_text(actor: User, text: str, filters: Filters, page: int = 1) -> Page:
    """Full-text search of the stories `actor` may read."""
    page = max(page, 1)
    hits = search.full_text(text, allowed_ids(actor, filters), PAGE_SIZE,
                            (page - 1) * PAGE_SIZE)
    cards = cards_of([h.story_id for h in hits])
    snippets = {h.story_id: h.snippet for h in hits}
    for card in cards:
        card.snippet = snippets[card.story_id]
    return Page(cards, None, page, None)


def _generation() -> tuple:
    """What the meaning index must match: how many entries, and their last change."""
    return tuple(db.session.execute(select(func.count(), func.max(LibraryEntry.changed_at))
                                    .where(LibraryEntry.state == CurationState.APPROVED))
                 .one())


def _means():
    def load():
        return db.session.execute(select(LibraryEntry.story_id, LibraryEntry.embedding)
                                  .where(LibraryEntry.state == CurationState.APPROVED))

    return search.story_means(_generation(), load)


def search_meaning(actor: User, text: str, filters: Filters, limit: int = PAGE_SIZE) -> Page:
    """Meaning search: the stories whose passages say something close to `text`."""
    from ..themes.service import embedding_model_id

    text = " ".join(text.split())[:300]
    if not text:
        return Page([], 0, 1, 1)
    query = np.frombuffer(search.embed_query(text, current_app.config[
        "THEME_EMBEDDING_MODEL"]), dtype=np.float32)
    means = _means()
    shortlist = search.closest(query, means, _allowed_mask(actor, filters, means),
                               max(search.SHORTLIST, limit))
    if not shortlist:
        return Page([], 0, 1, 1)
    rows = db.session.connection().execute(
        select(Passage.story_id, Passage.start, Passage.text, Passage.embedding)
        .where(Passage.story_id.in_(shortlist), Passage.embedding_model == embedding_model_id(),
               Passage.embedding.is_not(None))).all()
    best: dict[int, tuple[float, float, str]] = {}
    if rows:
        vectors = search.unit(np.stack([np.frombuffer(r[3] or b"", dtype=np.float32)
                                        for r in rows]))
        for (story_id, start, passage_text, _e), score in zip(rows, vectors @ query,
                                                             strict=True):
            if story_id not in best or score > best[story_id][0]:
                best[story_id] = (float(score), start, passage_text)
    ranked = sorted(shortlist, key=lambda i: -best.get(i, (-1.0, 0.0, ""))[0])[:limit]
    cards = cards_of(ranked)
    for card in cards:
        if card.story_id in best:
            _score, card.start, passage_text = best[card.story_id]
            card.snippet = search.highlighted(clip(passage_text))
    return Page(cards, len(cards), 1, 1)


def clip(text: str, words: int = 40) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


def related(actor: User, story_id: int, n: int = 4) -> list[Card]:
    """The library stories closest in meaning to this one (by their mean embeddings)."""
    means = _means()
    where = np.nonzero(means.story_ids == story_id)[0]
    if not len(where):
        return []
    allowed = _allowed_mask(actor, Filters(), means) & (means.story_ids != story_id)
    return cards_of(search.closest(means.vectors[where[0]], means, allowed, n))


def _allowed_mask(actor: User, filters: Filters, means) -> np.ndarray:
    """Which rows of the meaning matrix `actor` may have, with `filters`, as a boolean mask.

    Unfiltered, ask for the few approved stories the policy now refuses (withdrawn, overdue,
    consent narrowed) rather than fetch the thousands it allows.
    """
    connection = db.session.connection()
    if not filters.any:
        shown = func.coalesce(policy.library_filter(actor, policy.Action.LIBRARY), false())
        refused = select(LibraryEntry.story_id).outerjoin(
            Consent, Consent.story_id == LibraryEntry.story_id).where(
            LibraryEntry.state == CurationState.APPROVED, or_(Consent.id.is_(None), ~shown))
        out = np.fromiter(connection.execute(refused).scalars(), dtype=np.int64)
        return ~np.isin(means.story_ids, out)
    allowed = np.fromiter(connection.execute(allowed_ids(actor, filters)).scalars(),
                          dtype=np.int64)
    return np.isin(means.story_ids, allowed)


# --- reading ----------------------------------------------------------------------------------

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


def reading(story: Story) -> list[Line]:
    """Return the redacted transcript, speakers named only "Speaker 1", "Speaker 2"…

    Reporters may have named the speakers (even with real names): staff never see those.
    """
    from ..transcripts.text import tokens

    transcript = transcript_of(story.id)
    if transcript is None:
        return []
    segments = db.session.execute(
        select(Segment.id, Segment.start, Segment.speaker, Segment.text)
        .where(Segment.transcript_id == transcript.id).order_by(Segment.position)).all()
    words: dict[int, list] = defaultdict(list)
    for row in db.session.execute(
            select(Word.segment_id, Word.id, Word.text, Word.start, Word.end, Word.probability,
                   Word.edited, Word.redaction)
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


_choices: dict[tuple, dict[str, list]] = {}


def _consent_marker() -> tuple:
    """What changes when any story's consent to the library changes (withdrawn, narrowed)."""
    return tuple(db.session.execute(select(
        func.count(Consent.withdrawn_at), func.sum(case((Consent.staff_library, 1), else_=0)),
        func.sum(case((Consent.transcribe_analyse, 1), else_=0)),
        func.max(Consent.review_on))).one())


def choices(actor: User) -> dict[str, list]:
    """Filter choices: the themes of the latest run, sites and tags of readable stories.

    Every reader of the library has the same choices; they are remembered until an entry or
    a consent changes (or the day does, for review dates).
    """
    key = (_generation(), _consent_marker(), date.today(), latest_theme_run_id())
    if key not in _choices:
        _choices.clear()
        _choices[key] = _choices_now(actor)
    return _choices[key]


def _choices_now(actor: User) -> dict[str, list]:
    allowed = allowed_ids(actor).subquery()
    sites = db.session.execute(
        select(Site.id, Site.name).where(Site.id.in_(
            select(Story.site_id).where(Story.id.in_(select(allowed.c.id)))))
        .order_by(Site.name)).all()
    return {"themes": theme_choices(), "sites": [tuple(s) for s in sites],
            "tags": _tags(allowed)}


def _tags(allowed) -> list[str]:
    found: set[str] = set()
    for tags in db.session.scalars(
            select(Story.tags).where(Story.id.in_(select(allowed.c.id)), Story.tags != "")
            .distinct()):
        found.update(t for t in tags.split(",") if t)
    return sorted(found)


def listened(actor: User, story: Story) -> None:
    audit.record("library.play", actor.id, "story", story.id)


def read(actor: User, story: Story) -> None:
    audit.record("library.read", actor.id, "story", story.id)


def recorded_month(day: date | datetime) -> str:
    return f"{day:%B %Y}"


def warm_up(app) -> None:
    """Load the meaning-search model and matrix in the background, so the first staff member
    to search by meaning does not wait for them (7 s cold at 10,000 stories)."""
    import threading

    def run() -> None:
        try:
            with app.app_context():
                if db.session.scalar(select(LibraryEntry.story_id).where(
                        LibraryEntry.state == CurationState.APPROVED).limit(1)) is None:
                    return
                import torch

                # A web process embeds one short query at a time: one thread each leaves the
                # other cores to the other web processes (a worker's theme run keeps them all).
                torch.set_num_threads(1)
                _means()
                search.embed_query("warming up", current_app.config["THEME_EMBEDDING_MODEL"])
                db.session.remove()
        except Exception:  # a failed warm-up only means a slower first search
            logger.exception("Library warm-up failed")
        finally:
            _freeze_loaded_objects()

    threading.Thread(target=run, name="library-warm-up", daemon=True).start()


def _freeze_loaded_objects() -> None:
    """Keep what the process has loaded out of every later garbage collection."""
    import gc

    # With the model loaded, a full garbage collection walks its 560,000 objects: 0.2 s
    # with every thread of the process stopped, the slowest 1% of library requests.
    # Loaded once and kept, they need never be walked again.
    gc.collect()
    gc.freeze()
