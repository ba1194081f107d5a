"""How well the staff library ranks what it lists: the first five stories, the first relevant one.

The labelled query set is benchmarks/library_relevance.py's: 43 searches a probation staff
member might type ("leaving prison with nowhere to live", "keeps changing case manager",
"caseloads"…), each with the stories that are relevant to it by the collections' own labels, in
the same libraries (the 32 test-corpus and demo stories; with the full run also the 48 pilot
stories alone, and all 80 together). Its 25 searches about nothing the stories speak of are
counted apart (`nothing_found_right`): there the right answer is "No stories match".

Each library is built as StoryHub holds it: every story's passages split and embedded with the
model the app is configured with (`STORYHUB_THEME_EMBEDDING_MODEL`, or the instance's
storyhub.cfg; the bundled all-MiniLM-L6-v2 by default), and its transcript in a real full-text
index (SQLite FTS5, through StoryHub's migrations, in a temporary folder; transcripts only, as
these stories have no curator's title or summary). Searches run through
`storyhub.library.search` as the library runs them:

- meaning: the closest stories by their mean passage, each scored by its best passage; when
  the closest one reaches the cut-off (`LIBRARY_MEANING_MIN_SCORE`), every story scoring at
  least `search.LISTED_SHARE` of it is listed, at most a page of 20, ordered by its score and by
  how well the story matches the search's own words (`search.WORD_WEIGHT`). Peers, measured in
  the same run: the cut-off for every story, as before (each story listed only if it reaches the
  cut-off itself: `LISTED_SHARE` 1), with the words and by meaning alone (weight 0);
- exact words (`words_p_at_5`): every word of the search must be in the story (the library's
  default), best bm25 first. Peers: any of the words; and, as the library did before, any of
  them only when no story has them all.

Figures, over each query with relevant stories in each library, of the list as a staff member
sees it: `p_at_5`, the relevant stories among the first five listed, out of five (or out of
how many are relevant, when fewer), so a story the cut-off leaves out counts as a miss; `mrr`,
1 / the rank of the first relevant story (0 when none is listed); `ndcg_at_10`, binary gains
over the first ten; `nothing_found_right`, the share of the searches about nothing answered
"No stories match". The same order without the cut-off, and the share of the first five listed
that are relevant, are printed to show what holds p@5 back.

Held out: `LISTED_SHARE` is chosen, by `choose_share`'s criterion, on the even-numbered labelled
searches and measured on the odd-numbered ones, then the other way round; the figures on the
half it was not chosen on are the honest ones.

    .venv/bin/python benchmarks/library_search.py [--word-weight 0.1] [--model NAME] [--quick]

--quick (CI, a test runs it): the library of the 32 test-corpus and demo stories only.

Last line: RESULT queries=… p_at_5=… mrr=… ndcg_at_10=… words_p_at_5=… seconds=…
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import library_relevance as labelled  # noqa: E402
from benchmarks import story_corpus  # noqa: E402
from storyhub.library import search  # noqa: E402

PAGE = labelled.PAGE  # a page of results (library.finding.PAGE_SIZE)


def configured() -> dict:
    """StoryHub's settings as the app reads them (defaults, the instance's storyhub.cfg, then
    STORYHUB_* variables), without creating anything in the instance folder."""
    from storyhub.config import instance_path, load

    return load(instance_path() or str(REPO / "instance"))[0].as_config()


def app_in(folder: Path, settings: dict):
    """A StoryHub app on a fresh SQLite database in `folder`, with `settings`' model."""
    from storyhub import create_app
    from storyhub.database import upgrade_schema

    os.environ["STORYHUB_INSTANCE_PATH"] = str(folder)
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'benchmark.sqlite'}",
        "SECRET_KEY": "benchmark", "THEME_WARM_UP": False,
        "THEME_EMBEDDING_MODEL": settings["THEME_EMBEDDING_MODEL"]})
    upgrade_schema(app)
    return app


@dataclass
class Library:
    """The stories of one library: their passages (embedded) and their place in the index."""

    name: str
    members: list[int]  # story numbers: an index into the stories, +1 in the full-text index


def grade(listed: list[str], relevant: set[str]) -> tuple[float, float, float, float]:
    """p@5 (out of min(5, relevant)), reciprocal rank, nDCG@10 and the share of the first five
    listed that are relevant."""
    first = listed[:5]
    hits = sum(key in relevant for key in first)
    p5 = hits / min(5, len(relevant))
    rr = next((1 / rank for rank, key in enumerate(listed, 1) if key in relevant), 0.0)
    dcg = sum(1 / math.log2(rank + 1) for rank, key in enumerate(listed[:10], 1)
              if key in relevant)
    ideal = sum(1 / math.log2(rank + 1) for rank in range(1, min(10, len(relevant)) + 1))
    return p5, rr, dcg / ideal, hits / len(first) if first else 0.0


def mean(rows: list[tuple[float, ...]]) -> list[float]:
    return [float(v) for v in np.mean(np.array(rows), axis=0)] if rows else []


@dataclass
class Searched:
    """One labelled search in one library: what is relevant, and every story it considers."""

    library: str
    number: int  # the search's place in the labelled set
    relevant: set[str]
    in_order: list[search.Scored]  # the shortlist, best first (meaning and words)
    by_meaning: list[search.Scored]  # the same, by meaning alone
    words: dict[str, list[str]]  # exact-word searches: name -> stories listed


SHARES = [round(float(s), 2) for s in np.arange(0.0, 1.001, 0.05)]


def figures_of(searched: list[Searched], keys: list[str], cutoff: float, share: float,
               meaning: bool = False) -> list[float]:
    """p@5, MRR, nDCG@10, shown p@5 over the searches with relevant stories, and the share of
    searches about nothing answered "No stories match", as the library lists with `share`."""
    rows, nothing = [], []
    for item in searched:
        found = search.passing(item.by_meaning if meaning else item.in_order, cutoff, share)
        listed = [keys[s.story_id - 1] for s in found[:PAGE]]
        if item.relevant:
            rows.append(grade(listed, item.relevant))
        else:
            nothing.append(not listed)
    return mean(rows) + [float(np.mean(nothing)) if nothing else 1.0]


def choose_share(searched: list[Searched], keys: list[str], cutoff: float) -> float:
    """The criterion for `search.LISTED_SHARE`: the highest share (the shortest lists) whose
    p@5 is within 0.01 of listing every shortlisted story once the closest reaches the cut-off.
    (p@5 only rises as the share falls, and the stories listed grow less relevant.)"""
    everything = figures_of(searched, keys, cutoff, 0.0)[0]
    return max(s for s in SHARES if figures_of(searched, keys, cutoff, s)[0] >= everything - 0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one library: the 32 test-corpus and demo stories (CI)")
    parser.add_argument("--word-weight", type=float, default=search.WORD_WEIGHT,
                        help="how far the search's own words move a story up (default: "
                             "StoryHub's)")
    parser.add_argument("--model", default=None,
                        help="sentence model, as THEME_EMBEDDING_MODEL (default: StoryHub's)")
    args = parser.parse_args()
    started = time.perf_counter()
    settings = configured()
    if args.model is not None:
        settings["THEME_EMBEDDING_MODEL"] = args.model
    cutoff = settings["LIBRARY_MEANING_MIN_SCORE"]
    model = settings["THEME_EMBEDDING_MODEL"]

    from sqlalchemy import literal_column, select, table

    from storyhub.extensions import db
    from storyhub.themes import modeling
    from storyhub.themes.passages import split_passages

    pilot = [] if args.quick else labelled.pilot_stories()
    stories = pilot + labelled.corpus_stories() + labelled.demo_stories()
    keys = [s.key for s in stories]
    everyone = list(range(len(stories)))
    libraries = [Library("corpus and demo", everyone[len(pilot):])]
    if not args.quick:
        libraries += [Library("pilot", everyone[:len(pilot)]), Library("all", everyone)]

    passages: list[tuple[int, float, str]] = []  # (story number + 1, start, text)
    bodies = []
    for number, story in enumerate(stories):
        transcript = story_corpus.transcript_of(story.segments)
        passages += [(number + 1, p.start, p.text) for p in split_passages(transcript)]
        bodies.append(" ".join(segment.text for segment in story.segments))
    vectors = modeling.embed([text for _n, _s, text in passages], model)
    rows = [(n, start, text, vector.astype(np.float32).tobytes())
            for (n, start, text), vector in zip(passages, vectors, strict=True)]
    queries = list(labelled.QUERIES)
    nothing = labelled.NOTHING
    embedded = search.unit(modeling.embed(queries + nothing, model))

    searched: list[Searched] = []
    with tempfile.TemporaryDirectory() as folder:
        app = app_in(Path(folder), settings)
        with app.app_context():
            for number, body in enumerate(bodies):
                search.index_story(number + 1, "", "", body)
            db.session.commit()
            for library in libraries:
                ids = [n + 1 for n in library.members]
                rowid = literal_column("rowid")
                allowed = select(rowid).select_from(table(search.TABLE)).where(rowid.in_(ids))
                means = search.story_means(("benchmark", library.name), lambda ids=ids: [
                    (i, search.mean_vector([r[3] for r in rows if r[0] == i])) for i in ids])
                mask = np.ones(len(means.story_ids), dtype=bool)
                shown = [stories[n] for n in library.members]
                for number, (text, query) in enumerate(
                        zip(queries + nothing, embedded, strict=True)):
                    shortlist = search.closest(query, means, mask, max(search.SHORTLIST, PAGE))
                    chosen = set(shortlist)
                    best = search.best_passages(query, [r for r in rows if r[0] in chosen])
                    words = search.word_scores(text, shortlist)
                    relevant = labelled.relevant(text, shown)
                    listed: dict[str, list[str]] = {}
                    if relevant:
                        for every, name in ((True, "words"), (False, "any_words")):
                            listed[name] = [keys[h.story_id - 1] for h in search.full_text(
                                text, allowed, PAGE, 0, every)]
                        # As the library searched before: any of the words when none had all.
                        listed["words_before"] = listed["words"] or listed["any_words"]
                    searched.append(Searched(
                        library.name, number, relevant,
                        search.ordered(shortlist, best, words, args.word_weight),
                        search.ordered(shortlist, best, words, 0.0), listed))
            db.session.remove()
            db.engine.dispose()
    seconds = time.perf_counter() - started

    share = search.LISTED_SHARE
    figures = {
        "after": figures_of(searched, keys, cutoff, share),
        "before": figures_of(searched, keys, cutoff, 1.0),
        "meaning_before": figures_of(searched, keys, cutoff, 1.0, meaning=True),
        "no_cutoff": figures_of(searched, keys, -np.inf, 1.0),
    }
    with_words = [item for item in searched if item.relevant]
    for name in ("words", "any_words", "words_before"):
        figures[name] = mean([grade(item.words[name], item.relevant)
                              for item in with_words]) + [float("nan")]
    shown_model = model or getattr(modeling, "DEFAULT_EMBEDDING_MODEL", "the default")
    print(f"{len(queries)} labelled searches (and {len(nothing)} about nothing) in "
          + ", ".join(f"{lib.name} ({len(lib.members)} stories)" for lib in libraries)
          + f"; {len(rows)} passages; model {shown_model}, cut-off "
            f"{cutoff:.2f}, listed from {share:g} of it; {seconds:.1f} s with the model's "
            "loading")
    names = {"after": f"StoryHub (share {share:g}, weight {args.word_weight:g})",
             "before": "cut-off for every story (before)",
             "meaning_before": "the same, by meaning alone",
             "no_cutoff": "no cut-off",
             "words": "exact words, all of them", "any_words": "exact words, any of them",
             "words_before": "exact words, any if none has all"}
    print(f"{'':>40}  p_at_5  mrr    ndcg10 shown_p5 nothing  (over {len(with_words)} "
          "search-library pairs)")

    def row(label: str, values: list[float]) -> str:
        p5, rr, ndcg, shown_p5, right = values
        return (f"{label:>40}  {p5:.3f}   {rr:.3f}  {ndcg:.3f}  {shown_p5:.3f}    "
                + ("" if math.isnan(right) else f"{right:.3f}"))

    for name, label in names.items():
        print(row(label, figures[name]))
    for library in libraries:
        print(row("in " + library.name, figures_of(
            [item for item in searched if item.library == library.name], keys, cutoff, share)))
    halves = ([item for item in searched if item.number % 2 == 0],
              [item for item in searched if item.number % 2 == 1])
    for n, (tune, test) in enumerate((halves, halves[::-1]), 1):
        chosen = choose_share(tune, keys, cutoff)
        print(row(f"half {n}: share {chosen:g} on the other", figures_of(test, keys, cutoff,
                                                                        chosen)))
        print(row(f"half {n}: before, on the same", figures_of(test, keys, cutoff, 1.0)))
    print(f"Chosen on every search: share {choose_share(searched, keys, cutoff):g}")
    after = figures["after"]
    print(f"Searches about nothing answered \"No stories match\": "
          f"{after[4]:.3f} (before {figures['before'][4]:.3f})")
    print(f"RESULT queries={len(queries)} p_at_5={after[0]:.3f} mrr={after[1]:.3f} "
          f"ndcg_at_10={after[2]:.3f} words_p_at_5={figures['words'][0]:.3f} "
          f"seconds={seconds:.1f}")


if __name__ == "__main__":
    main()
