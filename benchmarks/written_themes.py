"""Themes from written stories: the theme pipeline where no transcription error can blur them.

    .venv/bin/python benchmarks/written_themes.py [--model all-mpnet-base-v2] [--quick]

Three collections with known themes, each as written, each themed on its own as a theme run
would theme it (`split_passages` of a one-speaker transcript, embedding, `fit_themes` with the
parameters `params_for` chooses and the stories as groups):

- pilot: the 48 stories of benchmarks/data/stories/pilot.yaml, eight themes (`main`);
- corpus: the 12 stories of tests/support/theme_corpus.py, four themes;
- demo: the 20 demo stories (storyhub/demo/stories.json), by their first tag (alcohol counted
  with drugs, as the demo's own theme names do), seven themes.

For each: story_nmi and story_ari, each story's main theme (the theme holding most of its words)
against its known one. passages_per_second is the embedding speed over all three collections;
seconds the whole run after the model is loaded (splitting, embedding, theming). --model names
the sentence model as THEME_EMBEDDING_MODEL does (default: StoryHub's default).

--quick (CI, a test runs it): two pilot stories per theme, the corpus and the demo; the same
RESULT line in seconds.

Last line: RESULT stories=… pilot_nmi=… pilot_ari=… corpus_nmi=… corpus_ari=… demo_nmi=…
demo_ari=… passages_per_second=… seconds=…
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import story_corpus  # noqa: E402
from benchmarks.story_themes import Units, passages, story_main  # noqa: E402

DEMO = REPO / "storyhub" / "demo" / "stories.json"
DEMO_THEME = {"alcohol": "drugs"}
QUICK_PER_THEME = 2


def pilot(quick: bool) -> tuple[list, dict[str, str]]:
    stories, taken = [], Counter()
    for s in story_corpus.load().stories:
        if not quick or taken[s.main] < QUICK_PER_THEME:
            taken[s.main] += 1
            stories.append((s.key, s.text))
    known = {s.key: s.main for s in story_corpus.load().stories}
    return stories, {key: known[key] for key, _ in stories}


def corpus() -> tuple[list, dict[str, str]]:
    from tests.support.theme_corpus import CORPUS

    return [(s.key, s.text) for s in CORPUS], {s.key: s.theme for s in CORPUS}


def demo() -> tuple[list, dict[str, str]]:
    items = json.loads(DEMO.read_text())["stories"]
    # A dialogue's questions are in its transcript too.
    stories = [(i["key"], i.get("text") or " ".join(said for _who, said in i["turns"]))
               for i in items]
    return stories, {i["key"]: DEMO_THEME.get(i["tags"][0], i["tags"][0]) for i in items}


def theme(stories: list, model: str) -> tuple[Units, dict[str, int], int, float]:
    """Theme one collection; return its passages, each story's main theme, the number of
    themes and the seconds spent embedding."""
    from storyhub.themes.modeling import embed, fit_themes, params_for

    shell = story_corpus.PilotCorpus([story_corpus.PilotStory(k, "", "", None, t)
                                      for k, t in stories])
    units = passages(shell, {k: story_corpus.written_segments(t) for k, t in stories})
    t0 = time.perf_counter()
    vectors = embed(units.texts, model)
    embed_s = time.perf_counter() - t0
    result = fit_themes(units.texts, vectors, params_for(len(units.texts)),
                        embedding_model=model, groups=units.story)
    return units, story_main(units, result.topics), len(result.themes), embed_s


def main() -> None:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="sentence model (default: StoryHub's)")
    parser.add_argument("--quick", action="store_true", help="fewer pilot stories (for CI)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from storyhub.themes import neighbours
    from storyhub.themes.modeling import get_embedder

    get_embedder(args.model)  # a worker holds the model: loading it is no part of a run
    neighbours.enable_disk_cache()
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    figures: dict[str, float] = {}
    count = embedded = 0
    embed_s = 0.0
    for name, (stories, known) in {"pilot": pilot(args.quick), "corpus": corpus(),
                                   "demo": demo()}.items():
        units, found, themes, seconds = theme(stories, args.model)
        keys = [k for k, _ in stories]
        truth, got = [known[k] for k in keys], [found[k] for k in keys]
        figures[f"{name}_nmi"] = normalized_mutual_info_score(truth, got)
        figures[f"{name}_ari"] = adjusted_rand_score(truth, got)
        count, embedded, embed_s = count + len(keys), embedded + len(units.texts), embed_s + seconds
        print(f"{name}: stories={len(keys)} known_themes={len(set(truth))} themes={themes} "
              f"passages={len(units.texts)} nmi={figures[f'{name}_nmi']:.3f} "
              f"ari={figures[f'{name}_ari']:.3f}")
    seconds = time.perf_counter() - started
    print(f"load average (1 min) {load_before:.2f} before, {os.getloadavg()[0]:.2f} after, "
          f"on {os.cpu_count()} cores")
    print(f"RESULT stories={count} " + " ".join(f"{k}={v:.2f}" for k, v in figures.items())
          + f" passages_per_second={embedded / embed_s:.1f} seconds={seconds:.1f}")


if __name__ == "__main__":
    main()
