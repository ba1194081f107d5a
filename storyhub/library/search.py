"""Search the library: full text in the database engine, meaning over passage embeddings.

Full text: the `library_search` table holds each approved story's title, summary and redacted
transcript (never the unredacted words, so a name taken out cannot be found either). SQLite
keeps it as an FTS5 table (porter stemming, bm25 ranking, `snippet`); PostgreSQL as a table
with a generated, weighted tsvector and a GIN index (`ts_rank_cd`; snippets cut here). The service
layer writes it whenever what staff may read changes; `storyhub rebuild-search` rebuilds it.
Erasure takes a story's words out of the index's files too (`purge_from_index`).

Meaning: every approved story has the mean of its passage embeddings. A query is embedded
with the theme model (all-MiniLM-L6-v2), compared with the stories' means (a float32 matrix
cached in the process, reloaded when an entry changes) and the closest stories' passages are
ranked with their own stored embeddings: the story's score is its best passage's. A search
finds stories only when its closest story's score reaches the cut-off
(`LIBRARY_MEANING_MIN_SCORE`, calibrated by benchmarks/library_relevance.py); when none does,
nothing matches. When one does, the search is about something the library speaks of, and every
story scoring at least `LISTED_SHARE` of the cut-off is listed with it. The stories listed are
ordered by their score and, a little, by how well they match the search's own words in the
full-text index (`WORD_WEIGHT`; benchmarks/library_search.py measures both).
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
from ..themes import modeling

logger = logging.getLogger(__name__)
TABLE = "library_search"
START, STOP = "\x02", "\x03"  # marks around matched words, swapped for <mark> after escaping
SNIPPET_WORDS = 24
# Meaning search ranks the passages of this many closest stories (by their mean embedding).
SHORTLIST = 24
# How far sharing the search's own words moves a story up a meaning search, against cosine
# (0-1): measured with benchmarks/library_search.py.
WORD_WEIGHT = 0.1
# Once a meaning search's closest story reaches the cut-off, the stories at least this share of
# the cut-off close are listed too (0.21 at 0.39): one cut-off for every story left relevant
# stories out of the first five (benchmarks/library_search.py: p@5 0.40 with it, 0.60 with this).
# A share, not a cosine, so it follows the cut-off calibrated for another model. Chosen on
# half the labelled searches and measured on the other half, both ways (the benchmark prints it).
LISTED_SHARE = 0.55


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
    """Take a story out of the index's answers (retired, replaced); see `purge_from_index`."""
    column = "story_id" if _is_postgres() else "rowid"
    db.session.execute(sa.text(f"DELETE FROM {TABLE} WHERE {column} = :id"),  # noqa: S608
                       {"id": story_id})


def purge_from_index(story_id: int) -> None:
    """Take a story's words out of the index for good (erasure), not only out of its answers.

    A plain delete is not enough for that. FTS5 deletes by writing delete markers beside the
    old entries, so the story's words stay in `library_search_data` (terms with positions)
    until segments happen to merge: `compact` merges them at once. PostgreSQL keeps the dead
    row and the GIN index's entries until the erasure's scrub rewrites the table after commit
    (storyhub/database.py).
    """
    remove_story(story_id)
    compact()


def compact() -> None:
    """Merge the SQLite index into one segment, dropping deleted rows' entries (FTS5 'optimize').

    0.25 s at 10,000 stories (22 MB of index; nothing to do when nothing changed since), and
    the pages it frees are overwritten (`secure_delete`). FTS5's 'secure-delete' option
    (SQLite 3.42) would clean each delete instead, but it changes the table's file format
    for good: an older SQLite, after a restore or a move, could then neither search nor
    erase. PostgreSQL: nothing to do in the transaction (see `purge_from_index`).
    """
    if not _is_postgres():
        db.session.execute(sa.text(
            f"INSERT INTO {TABLE} ({TABLE}) VALUES ('optimize')"))  # noqa: S608 - a constant


def clear_index() -> None:
    db.session.execute(sa.text(f"DELETE FROM {TABLE}"))  # noqa: S608 - a constant


@dataclass(frozen=True)
class WordSearch:
    """A search for exact words as staff type it: words and "quoted phrases", all or any.

    `parts`: each a word or a phrase (its words in order), of letters and digits only, so
    nothing typed can be search syntax to either engine.
    """

    parts: tuple[tuple[str, ...], ...]
    every: bool = True

    @property
    def words(self) -> list[str]:
        return [w for part in self.parts for w in part]

    def fts5(self) -> str:
        """The SQLite FTS5 query: each part a quoted phrase (a word is a phrase of one).

        Words nearly every story says ("with", "to") are left out unless in a phrase or alone,
        as PostgreSQL's English configuration leaves them out: "all the words" of "nowhere to
        live" are "nowhere" and "live" on both.
        """
        parts = [p for p in self.parts if len(p) > 1 or p[0] not in COMMON] or self.parts
        return (" AND " if self.every else " OR ").join(
            '"' + " ".join(part) + '"' for part in parts)

    def websearch(self) -> str:
        """The text for PostgreSQL's websearch_to_tsquery: each part quoted (so a typed "or"
        or "-" is a word, not an operator), joined by AND (a space) or by "or"."""
        return (" " if self.every else " or ").join(
            '"' + " ".join(part) + '"' for part in self.parts)


QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"',
                        "\u00bb": '"'})  # phones type curly quotes
MAX_WORDS = 20
# Words nearly every story says, left out of searches as PostgreSQL's English stop words are:
# they find nothing and rank nothing, but reading their index entries took most of a meaning
# search's word scores at 10,000 stories.
COMMON = frozenset("a about all an and are as at be but by for from had has have he her his "
                   "i if in is it its me my no not of on or our she so that the their them "
                   "then there they this to was we were what when which who with you your"
                   .split())


def parse_words(text: str, every: bool = True) -> WordSearch:
    """Split a search into words and "quoted phrases" (an unclosed quote runs to the end)."""
    parts: list[tuple[str, ...]] = []
    for phrase, rest in re.findall(r'"([^"]*)"?|([^"]+)', text.translate(QUOTES)):
        if phrase:
            words = tuple(query_words(phrase))
            if words:
                parts.append(words)
        else:
            parts.extend((w,) for w in query_words(rest))
    kept, count = [], 0
    for part in dict.fromkeys(parts):  # the same word twice asks nothing more
        if count + len(part) > MAX_WORDS:
            break
        kept.append(part)
        count += len(part)
    return WordSearch(tuple(kept), every)


def full_text(text: str, allowed: Select, limit: int = 20, offset: int = 0,
              every: bool = True) -> list[Hit]:
    """Return the stories among `allowed` (a select of story ids) matching `text`, best first.

    `every`: every word and "quoted phrase" must be in the story (stemmed), else any of them.
    """
    query = parse_words(text, every)
    if not query.parts:
        return []
    return (_postgres if _is_postgres() else _sqlite)(query, allowed, limit, offset)


def count(text: str, allowed: Select, every: bool = True) -> int:
    """Return how many stories among `allowed` match `text` (see `full_text`)."""
    query = parse_words(text, every)
    if not query.parts:
        return 0
    matched = _matched(query)
    return db.session.scalar(select(func.count()).select_from(matched)
                             .where(matched.c.id.in_(allowed))) or 0


def word_scores(text: str, story_ids: list[int]) -> dict[int, float]:
    """Return how well each of `story_ids` matches any word of `text`, the best 1.0, the rest in
    proportion (bm25 on SQLite, ts_rank_cd on PostgreSQL); a story with none is left out.

    Meaning search adds these to its own scores, so a story that says the searched words
    comes before one that only says something like them.
    """
    query = parse_words(text, every=False)
    if not any(len(p) > 1 or p[0] not in COMMON for p in query.parts) or not story_ids:
        return {}  # common words alone rank nothing
    matched = _matched(query)
    rows = db.session.execute(select(matched.c.id, matched.c.score)
                              .where(matched.c.id.in_(story_ids))).all()
    best = max((row.score for row in rows), default=0.0)
    return {int(row.id): float(row.score) / best for row in rows if best > 0}


def _matched(query: WordSearch) -> sa.Subquery | sa.CTE:
    """Every story in the index matching `query`, as rows of (id, score): higher is better."""
    if _is_postgres():
        tsquery = func.websearch_to_tsquery("english", query.websearch())
        # Ranked through the GIN index (migration 0014 says why).
        found = func.library_matches(tsquery).table_valued("story_id", "rank").alias("found")
        return select(found.c.story_id.label("id"), found.c.rank.label("score")).subquery()
    table = sa.table(TABLE, sa.column("rowid"))
    this: sa.ColumnClause = sa.literal_column(TABLE)
    # Ranked in the index alone first (milliseconds for thousands of stories): left to itself
    # SQLite would check each match against `allowed` one by one, and make snippets for all.
    return (select(table.c.rowid.label("id"),
                   (-func.bm25(this, 10.0, 4.0, 1.0)).label("score"))
            .select_from(table).where(this.op("MATCH")(query.fts5()))
            .cte("matched").prefix_with("MATERIALIZED"))


def _sqlite(query: WordSearch, allowed: Select, limit: int, offset: int) -> list[Hit]:
    table = sa.table(TABLE, sa.column("rowid"))
    this: sa.ColumnClause = sa.literal_column(TABLE)
    ranked = _matched(query)
    page = db.session.execute(
        select(ranked.c.id, ranked.c.score).where(ranked.c.id.in_(allowed))
        .order_by(ranked.c.score.desc(), ranked.c.id).limit(limit).offset(offset)).all()
    if not page:
        return []
    # Snippets are made for the page only.
    snippets = dict(db.session.execute(
        select(table.c.rowid, func.snippet(this, -1, START, STOP, "…", SNIPPET_WORDS))
        .select_from(table)
        .where(this.op("MATCH")(query.fts5()),
               table.c.rowid.in_([row.id for row in page]))).all())
    return [Hit(int(row.id), highlighted(snippets.get(row.id, "")), float(row.score))
            for row in page]


def _postgres(query: WordSearch, allowed: Select, limit: int, offset: int) -> list[Hit]:
    table = sa.table(TABLE, sa.column("story_id"), sa.column("summary"), sa.column("body"))
    matched = _matched(query)
    best = (select(matched.c.id, matched.c.score)
            .where(matched.c.id.in_(allowed))
            .order_by(matched.c.score.desc(), matched.c.id).limit(limit).offset(offset)
            .subquery())
    rows = db.session.execute(
        select(best.c.id, best.c.score, table.c.summary, table.c.body)
        .join(table, table.c.story_id == best.c.id)
        .order_by(best.c.score.desc(), best.c.id)).all()
    if not rows:
        return []
    # Snippets are cut here, not by ts_headline: it parses and stems each whole transcript
    # again, and took 2-3 ms a story (most of a search's time at 10,000 stories).
    texts = [f"{summary} … {body}" for _id, _score, summary, body in rows]
    matches = _matching_words(query.words, texts)
    return [Hit(int(row.id), highlighted(snippet(text, matches)), float(row.score))
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


@dataclass(frozen=True)
class Scored:
    """A story's passage closest to a meaning search, and how close (cosine)."""

    story_id: int
    score: float
    start: float
    text: str


def best_passages(query: np.ndarray, rows) -> dict[int, Scored]:
    """Return each story's passage closest to `query` (a unit vector).

    `rows`: (story_id, start, text, embedding bytes) for the passages to compare.
    """
    rows = list(rows)
    if not rows:
        return {}
    vectors = unit(np.stack([np.frombuffer(r[3] or b"", dtype=np.float32) for r in rows]))
    best: dict[int, Scored] = {}
    for (story_id, start, text, _e), score in zip(rows, vectors @ query, strict=True):
        if story_id not in best or score > best[story_id].score:
            best[story_id] = Scored(int(story_id), float(score), start, text)
    return best


def ranked(shortlist: list[int], best: dict[int, Scored], limit: int,
           min_score: float, words: dict[int, float] | None = None,
           word_weight: float = WORD_WEIGHT, share: float = LISTED_SHARE) -> list[Scored]:
    """Return up to `limit` shortlisted stories that the search lists (see `passing`), best
    first (see `ordered`)."""
    return passing(ordered(shortlist, best, words, word_weight), min_score, share)[:limit]


def ordered(shortlist: list[int], best: dict[int, Scored],
            words: dict[int, float] | None = None,
            word_weight: float = WORD_WEIGHT) -> list[Scored]:
    """Return the shortlisted stories best first.

    Best: the closest passage, moved up by `word_weight` times the story's share of the
    search's own words (`word_scores`). Only the order: whether a story is listed is the
    meaning's alone, so "No stories match" still means no story is about the search.
    """
    words = words or {}
    return sorted((best[i] for i in shortlist if i in best),
                  key=lambda s: (-(s.score + word_weight * words.get(s.story_id, 0.0)),
                                 s.story_id))


def passing(found: list[Scored], min_score: float,
            share: float = LISTED_SHARE) -> list[Scored]:
    """Keep the stories a search lists: none when no story's best passage scores `min_score`
    (the search is about something no story speaks of); else those scoring `share` of it.

    `share` 1: every story must reach the cut-off itself, as the library did before.
    """
    if not any(s.score >= min_score for s in found):
        return []
    floor = min(min_score, share * min_score)
    return [s for s in found if s.score >= floor]
