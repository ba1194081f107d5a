"""Search the library: full text in the database engine, meaning over passage embeddings.

Full text: the `library_search` table holds each approved story's title, summary and redacted
transcript (never the unredacted words, so a name taken out cannot be found either). SQLite
keeps it as an FTS5 table (porter stemming, bm25 ranking, `snippet`); PostgreSQL as a table
with a generated, weighted tsvector and a GIN index (`ts_rank_cd`; snippets cut here). The service
layer writes it whenever what staff may read changes; `storyhub rebuild-search` rebuilds it.

Meaning: every approved story has the mean of its passage embeddings. A query is embedded
with the theme model (all-MiniLM-L6-v2), compared with the stories' means (a float32 matrix
cached in the process, reloaded when an entry changes) and the closest stories' passages are
ranked with their own stored embeddings: the story's score is its best passage's.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sqlalchemy as sa
from markupsafe import Markup, escape
from sqlalchemy import Select, func, select

from ..extensions import db

logger = logging.getLogger(__name__)
TABLE = "library_search"
START, STOP = "\x02", "\x03"  # marks around matched words, swapped for <mark> after escaping
SNIPPET_WORDS = 24
# Meaning search ranks the passages of this many closest stories (by their mean embedding).
SHORTLIST = 24


@dataclass(frozen=True)
class Hit:
    story_id: int
    snippet: Markup
    score: float
    start: float | None = None  # where the passage begins in the recording (meaning search)


def _is_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def query_words(text: str) -> list[str]:
    """Return the words of a search as typed (punctuation and search syntax dropped)."""
    return re.findall(r"\w+", text.lower())[:20]


def highlighted(text: str) -> Markup:
    """Return engine snippet text escaped, its match marks as <mark>."""
    # Escaped first: only the marks become markup.
    return Markup(  # noqa: S704
        str(escape(text)).replace(START, "<mark>").replace(STOP, "</mark>"))


def index_story(story_id: int, title: str, summary: str, body: str) -> None:
    """Put (or replace) a story's words in the full-text index."""
    remove_story(story_id)
    column = "story_id" if _is_postgres() else "rowid"
    db.session.execute(sa.text(
        f"INSERT INTO {TABLE} ({column}, title, summary, body) "  # noqa: S608 - constants only
        "VALUES (:id, :title, :summary, :body)"),
        {"id": story_id, "title": title, "summary": summary, "body": body})


def remove_story(story_id: int) -> None:
    column = "story_id" if _is_postgres() else "rowid"
    db.session.execute(sa.text(f"DELETE FROM {TABLE} WHERE {column} = :id"),  # noqa: S608
                       {"id": story_id})


def clear_index() -> None:
    db.session.execute(sa.text(f"DELETE FROM {TABLE}"))  # noqa: S608 - a constant


def full_text(text: str, allowed: Select, limit: int = 20, offset: int = 0) -> list[Hit]:
    """Return the stories among `allowed` (a select of story ids) matching `text`, best first.

    Every word must match (stemmed); when no story has them all, any word will do.
    """
    words = query_words(text)
    if not words:
        return []
    search = _postgres if _is_postgres() else _sqlite
    hits = search(words, allowed, limit, offset, every=True)
    if not hits and len(words) > 1 and offset == 0:
        hits = search(words, allowed, limit, offset, every=False)
    return hits


def _sqlite(words: list[str], allowed: Select, limit: int, offset: int,
            every: bool) -> list[Hit]:
    table = sa.table(TABLE, sa.column("rowid"))
    this: sa.ColumnClause = sa.literal_column(TABLE)
    match = (" AND " if every else " OR ").join(f'"{w}"' for w in words)
    # Rank every match first, in the index alone (milliseconds for thousands of stories): left
    # to itself SQLite would check each match against `allowed` one by one, and make snippets
    # for all of them. Snippets are made for the page only.
    ranked = (select(table.c.rowid.label("id"), func.bm25(this, 10.0, 4.0, 1.0).label("score"))
              .select_from(table).where(this.op("MATCH")(match))
              .cte("matched").prefix_with("MATERIALIZED"))
    page = db.session.execute(
        select(ranked.c.id, ranked.c.score).where(ranked.c.id.in_(allowed))
        .order_by(ranked.c.score, ranked.c.id).limit(limit).offset(offset)).all()
    if not page:
        return []
    snippets = dict(db.session.execute(
        select(table.c.rowid, func.snippet(this, -1, START, STOP, "…", SNIPPET_WORDS))
        .select_from(table)
        .where(this.op("MATCH")(match), table.c.rowid.in_([row.id for row in page]))).all())
    return [Hit(int(row.id), highlighted(snippets.get(row.id, "")), -float(row.score))
            for row in page]


def _postgres(words: list[str], allowed: Select, limit: int, offset: int,
              every: bool) -> list[Hit]:
    table = sa.table(TABLE, sa.column("story_id"), sa.column("summary"), sa.column("body"))
    plain = func.plainto_tsquery("english", " ".join(words))
    # Words are \w+ only, so joining them with | is a well-formed query.
    tsquery = plain if every else func.to_tsquery("english", " | ".join(words))
    # Ranked through the GIN index (migration 0014 says why), then kept to what `allowed` has.
    matched = func.library_matches(tsquery).table_valued("story_id", "rank").alias("matched")
    best = (select(matched.c.story_id, matched.c.rank)
            .where(matched.c.story_id.in_(allowed))
            .order_by(matched.c.rank.desc(), matched.c.story_id).limit(limit).offset(offset)
            .subquery())
    rows = db.session.execute(
        select(best.c.story_id, best.c.rank, table.c.summary, table.c.body)
        .join(table, table.c.story_id == best.c.story_id)
        .order_by(best.c.rank.desc(), best.c.story_id)).all()
    if not rows:
        return []
    # Snippets are cut here, not by ts_headline: it parses and stems each whole transcript
    # again, and took 2-3 ms a story (most of a search's time at 10,000 stories).
    texts = [f"{summary} … {body}" for _id, _rank, summary, body in rows]
    matches = _matching_words(words, texts)
    return [Hit(int(row.story_id), highlighted(snippet(text, matches)), float(row.rank))
            for row, text in zip(rows, texts, strict=True)]


def _matching_words(words: list[str], texts: list[str]) -> re.Pattern | None:
    """Return a pattern for the words of `texts` that PostgreSQL stems as it stems `words`."""
    stems = set(db.session.scalar(select(func.tsvector_to_array(
        func.to_tsvector("english", " ".join(words))))) or [])
    if not stems:
        return None
    # An English stem is the word's start, but for a last letter (happy: happi, live: living),
    # so the words that may match start with the stem less its last letter; PostgreSQL says
    # which of those really do.
    starts = sorted({s if len(s) <= 3 else s[:-1] for s in stems})
    candidates = re.compile(r"\b(?:" + "|".join(map(re.escape, starts)) + r")\w*",
                            re.IGNORECASE)
    seen = sorted({m.group().lower() for text in texts for m in candidates.finditer(text)})
    if not seen:
        return None
    matched = [word for word, lexemes in db.session.execute(sa.text(
        "SELECT w, tsvector_to_array(to_tsvector('english', w)) "
        "FROM unnest(CAST(:words AS text[])) AS t(w)"), {"words": seen})
        if stems & set(lexemes or [])]
    if not matched:
        return None
    return re.compile(r"\b(?:" + "|".join(map(re.escape, matched)) + r")\b", re.IGNORECASE)


def snippet(text: str, matches: re.Pattern | None, words: int = SNIPPET_WORDS) -> str:
    """Return about `words` words of `text` around its densest run of matches, marked."""
    width = words * 6  # characters: English averages five letters and a space a word
    found = list(matches.finditer(text)) if matches is not None else []
    begin = 0
    if found:
        def variety(i: int) -> int:  # how many different words match near the i-th match
            near = set()
            for m in found[i:]:
                if m.start() >= found[i].start() + width * 2 // 3:
                    break
                near.add(m.group().lower())
            return len(near)

        first = max(range(len(found)), key=lambda i: (variety(i), -i))
        begin = found[first].start()
        lead = text.rfind(" ", 0, max(0, begin - width // 4))  # a few words before the match
        begin = 0 if lead < 0 else lead + 1
    end = text.find(" ", begin + width)
    end = len(text) if end < 0 else end
    part = text[begin:end]
    if matches is not None:
        part = matches.sub(lambda m: f"{START}{m.group()}{STOP}", part)
    return ("…" if begin > 0 else "") + part + ("…" if end < len(text) else "")


# --- meaning search ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Means:
    key: tuple
    story_ids: np.ndarray
    vectors: np.ndarray  # one normalised float32 row per story


_means: _Means | None = None
_lock = threading.Lock()


def unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)


def mean_vector(embeddings: list[bytes]) -> bytes | None:
    """Return the normalised mean of normalised embeddings (float32 bytes), or None."""
    if not embeddings:
        return None
    stacked = unit(np.stack([np.frombuffer(e, dtype=np.float32) for e in embeddings]))
    return unit(stacked.mean(axis=0)).tobytes()


def story_means(key: tuple, load) -> _Means:
    """Return the stories' mean vectors, loading them (`load()` -> rows of id, bytes) on change.

    `key` says which version of the library the cache must hold (entries count and last change).
    """
    global _means
    cached = _means
    if cached is not None and cached.key == key:
        return cached
    with _lock:
        if _means is not None and _means.key == key:
            return _means
        rows = [(story_id, vector) for story_id, vector in load() if vector]
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = (np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
                   if rows else np.zeros((0, 384), dtype=np.float32))
        _means = _Means(key, ids, vectors)
        logger.info("Library meaning index loaded: %d stories", len(ids))
        return _means


def forget_means() -> None:
    """Drop the cached matrix (tests, and after a rebuild)."""
    global _means
    _means = None


@lru_cache(maxsize=2048)
def embed_query(text: str, model: str) -> bytes:
    """Embed a search (the model loads once per process; repeated searches are remembered)."""
    from ..themes import modeling

    return unit(modeling.embed([text], model)[0]).tobytes()


def closest(query: np.ndarray, means: _Means, allowed: np.ndarray, n: int) -> list[int]:
    """Return the ids of the `n` allowed stories whose mean vector is closest to `query`.

    `allowed`: a boolean mask over `means.story_ids`.
    """
    if not len(means.story_ids):
        return []
    scores = means.vectors @ query
    scores[~allowed] = -np.inf
    n = min(n, int(np.isfinite(scores).sum()))
    if n <= 0:
        return []
    top = np.argpartition(-scores, n - 1)[:n]
    return [int(means.story_ids[i]) for i in top[np.argsort(-scores[top])]]
