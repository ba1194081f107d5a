"""Find library stories: list, filter, search by words or by meaning, and related stories.

Lists and searches ask the policy in SQL (`policy.library_filter`), so a withdrawn story leaves
every list, search and related list the moment its consent is withdrawn, before its erasure
job has run. Every function returns cards: nothing on them says who told the story.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from sqlalchemy import ColumnElement, Select, and_, case, false, func, or_, select

from .. import dates, policy
from ..accounts.models import Site, User
from ..config import settings
from ..extensions import db
from ..stories.models import Consent, Recording, Story, Storyteller, StorytellerRole, StoryType
from ..themes.models import Passage
from ..themes.service import embedding_model_id
from . import publishing, search
from .models import CurationState, LibraryEntry

logger = logging.getLogger(__name__)
PAGE_SIZE = 20


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
    if filters.theme is not None:  # a theme of the run published to the library
        query = query.where(LibraryEntry.story_id.in_(publishing.stories_in(filters.theme)))
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
    # Meaning search: stories near the search, not close enough to list as about it.
    nearby: list[Card] = field(default_factory=list)


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
    themes = publishing.story_themes(list(by_id))
    for story_id, card in by_id.items():
        card.themes = themes.get(story_id, [])
    return [by_id[i] for i in ids if i in by_id]


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


def search_text(actor: User, text: str, filters: Filters, page: int = 1,
                every: bool = True) -> Page:
    """Full-text search of the stories `actor` may read: every word and "quoted phrase" of
    `text` (`every`), or any of them; the page says how many stories match."""
    allowed = allowed_ids(actor, filters)
    total = search.count(text, allowed, every)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    hits = search.full_text(text, allowed, PAGE_SIZE, (page - 1) * PAGE_SIZE, every)
    cards = cards_of([h.story_id for h in hits])
    snippets = {h.story_id: h.snippet for h in hits}
    for card in cards:
        card.snippet = snippets[card.story_id]
    return Page(cards, total, page, pages)


def count_text(actor: User, text: str, filters: Filters, every: bool) -> int:
    """How many stories `actor` may read match `text` (see `search_text`)."""
    return search.count(text, allowed_ids(actor, filters), every)


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


def search_meaning(actor: User, text: str, filters: Filters, limit: int = PAGE_SIZE,
                   nearest: bool = False) -> Page:
    """Meaning search: the stories whose passages say something close enough to `text`.

    Stories are listed only when the closest one's best passage reaches the cut-off
    (`LIBRARY_MEANING_MIN_SCORE`): a search about something no story speaks of finds nothing,
    and the page says so. When one does, every story close enough beside it is listed
    (`search.passing`). Stories less close (`LIBRARY_MEANING_NEAR_SCORE`) come apart, as
    `nearby`: beside a list, or when nothing is listed only if asked for (`nearest`), so
    "nothing matches" stays true.
    """
    text = " ".join(text.split())[:300]
    if not text:
        return Page([], 0, 1, 1)
    query = np.frombuffer(search.embed_query(text, settings().theme_embedding_model),
                          dtype=np.float32)
    means = _means()
    shortlist = search.closest(query, means, _allowed_mask(actor, filters, means),
                               max(search.SHORTLIST, limit))
    if not shortlist:
        return Page([], 0, 1, 1)
    rows = db.session.connection().execute(
        select(Passage.story_id, Passage.start, Passage.text, Passage.embedding)
        .where(Passage.story_id.in_(shortlist), Passage.embedding_model == embedding_model_id(),
               Passage.embedding.is_not(None))).all()
    configured = settings()
    best = search.best_passages(query, rows)
    words = search.word_scores(text, shortlist)
    in_order = search.ordered(shortlist, best, words)
    found = search.passing(in_order, configured.library_meaning_min_score)[:limit]
    near_score = configured.library_meaning_near_score
    near = [s for s in in_order if s.score >= near_score and s not in found
            ][:configured.library_meaning_nearby]
    if not found and not nearest:
        near = []
    return Page(_scored_cards(found), len(found), 1, 1, nearby=_scored_cards(near))


def _scored_cards(found: list[search.Scored]) -> list[Card]:
    """Cards for meaning-search results, each with the passage that matched and its time."""
    cards = cards_of([s.story_id for s in found])
    by_story = {s.story_id: s for s in found}
    for card in cards:
        scored = by_story[card.story_id]
        card.start, card.snippet = scored.start, search.highlighted(clip(scored.text))
    return cards


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


_choices: dict[tuple, dict[str, list]] = {}


def _consent_marker() -> tuple:
    """What changes when any story's consent to the library changes (withdrawn, narrowed)."""
    return tuple(db.session.execute(select(
        func.count(Consent.withdrawn_at), func.sum(case((Consent.staff_library, 1), else_=0)),
        func.sum(case((Consent.transcribe_analyse, 1), else_=0)),
        func.max(Consent.review_on))).one())


def choices(actor: User) -> dict[str, list]:
    """Filter choices: the published themes, sites and tags of readable stories.

    Every reader of the library has the same choices; they are remembered until an entry or
    a consent changes, a theme run is published (or the day changes, for review dates).
    """
    key = (_generation(), _consent_marker(), dates.today(), publishing.marker())
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
    return {"themes": publishing.theme_choices(), "sites": [tuple(s) for s in sites],
            "tags": _tags(allowed)}


def _tags(allowed) -> list[str]:
    found: set[str] = set()
    for tags in db.session.scalars(
            select(Story.tags).where(Story.id.in_(select(allowed.c.id)), Story.tags != "")
            .distinct()):
        found.update(t for t in tags.split(",") if t)
    return sorted(found)


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
                search.embed_query("warming up", settings().theme_embedding_model)
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
