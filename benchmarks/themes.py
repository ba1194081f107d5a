"""Theme quality and speed: StoryHub's adaptive BERTopic against plain BERTopic defaults.

Uses the sample defined in ../shared/data/feedback/README: rows with at least 8 words, without
the labels "Couldn't be improved" and "Miscellaneous", then df.sample(n=2000, random_state=0).
Both models get the same embeddings (by default the bundled all-MiniLM-L6-v2; --model names
another sentence model, as THEME_EMBEDDING_MODEL does); times are for theming after embedding.
With --big N it also themes N passages in a child process (fit on a sample, the rest assigned
to the nearest theme) and reports its time and peak memory.

    .venv/bin/python benchmarks/themes.py [--big 100000] [--model all-mpnet-base-v2]
    .venv/bin/python benchmarks/themes.py --stories [--cache DIR] [--model all-mpnet-base-v2]
    .venv/bin/python benchmarks/themes.py [--stories] --quick

--quick (CI, a test runs it) themes a sample of 400 comments, the fewest that take the UMAP and
HDBSCAN path (--big is left out); with --stories, see story_themes.py.

--stories runs the story benchmark instead (benchmarks/story_themes.py: 48 spoken stories with
known themes, ending with `RESULT stories=… themes=… story_nmi=… …`).

The last line is `RESULT nmi_sub=… nmi_label=… ari=… unassigned=… seconds=… base_nmi_sub=…
base_unassigned=…`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "feedback" / "text_data.csv"


def load_sample(path: Path, n: int = 2000):
    import pandas as pd

    df = pd.read_csv(path)
    df = df[df.feedback.astype(str).str.split().str.len() >= 8]
    df = df[~df.label.isin(["Couldn't be improved", "Miscellaneous"])]
    return df.sample(n=n, random_state=0) if n else df


def scores(truth_sub, truth_label, topics) -> dict:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    topics = np.asarray(topics)
    return {"nmi_sub": normalized_mutual_info_score(truth_sub, topics),
            "nmi_label": normalized_mutual_info_score(truth_label, topics),
            "ari": adjusted_rand_score(truth_sub, topics),
            "unassigned": float((topics == -1).mean()),
            "themes": len(set(topics.tolist()) - {-1})}


def plain_bertopic(texts, embeddings, model: str = ""):
    from bertopic import BERTopic
    from umap import UMAP

    from storyhub.themes.modeling import get_embedder

    # BERTopic's default UMAP settings, with a random state so runs repeat.
    umap = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=42)
    bertopic = BERTopic(embedding_model=get_embedder(model), umap_model=umap)
    topics, _ = bertopic.fit_transform(texts, embeddings)
    return topics


def big_run(n: int, path: Path, model: str = "") -> None:
    """Theme n passages (comments resampled with small noise) and print time and peak memory."""
    from storyhub.themes.modeling import embed, fit_themes, params_for

    df = load_sample(path, n=0)
    texts = df.feedback.astype(str).tolist()
    t0 = time.perf_counter()
    base = embed(texts, model)
    embed_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(texts), n)
    # Near-copies, not exact ones: every passage gets its own point.
    vectors = base[pick] + rng.normal(0, 0.01, (n, base.shape[1])).astype(np.float32)
    docs = [texts[i] for i in pick]
    t0 = time.perf_counter()
    result = fit_themes(docs, vectors, params_for(n), embedding_model=model)
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"passages": n, "distinct_texts": len(texts), "embed_seconds": embed_s,
                      "theme_seconds": seconds, "steps": result.seconds,
                      "themes": len(result.themes), "method": result.method,
                      "unassigned": float(np.mean(np.asarray(result.topics) == -1)),
                      "peak_rss_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--big", type=int, default=0, help="also theme this many passages")
    parser.add_argument("--stories", action="store_true",
                        help="the story benchmark (pilot-sized spoken collection) instead")
    parser.add_argument("--cache", type=Path, default=None,
                        help="where --stories keeps its transcripts")
    parser.add_argument("--quick", action="store_true",
                        help="a small sample, the same code in seconds (for CI)")
    parser.add_argument("--model", default="",
                        help="sentence model: a bundled one's name or a path (default: "
                             "the default bundled model)")
    parser.add_argument("--_big-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.stories:
        sys.path.insert(0, str(HERE.parent))
        from benchmarks import story_corpus, story_themes

        story_themes.main(args.cache or story_corpus.CACHE, quick=args.quick, model=args.model)
        return
    if args._big_child:
        big_run(args._big_child, args.data, args.model)
        return
    if not args.data.exists():
        sys.exit(f"No benchmark data at {args.data} (it lives in ../shared/data/feedback).")
    from storyhub.themes import neighbours
    from storyhub.themes.modeling import embed, fit_themes, params_for, warm_up
    from storyhub.themes.small_collections import SMALL_MAX_PASSAGES

    # Quick: the fewest comments that still take the UMAP and HDBSCAN path.
    sample = load_sample(args.data, n=SMALL_MAX_PASSAGES if args.quick else 2000)
    texts = sample.feedback.astype(str).tolist()
    t0 = time.perf_counter()
    embeddings = embed(texts, args.model)
    embed_s = time.perf_counter() - t0
    print(f"embedded {len(texts)} comments in {embed_s:.1f}s "
          f"({len(texts) / embed_s:.0f} passages a second)")
    # Compiling UMAP's numba code is no part of either side's time: a worker compiles it once
    # (or loads it from numba's disk cache, turned on here). Plain BERTopic first: after
    # `warm_up`, its UMAP compiled afresh (15 s) whatever the cache held.
    neighbours.enable_disk_cache()
    plain_bertopic(texts, embeddings, args.model)
    warm_up()

    t0 = time.perf_counter()
    base_topics = plain_bertopic(texts, embeddings, args.model)
    base_s = time.perf_counter() - t0
    base = scores(sample.subcategory, sample.label, base_topics)
    print(f"plain BERTopic:  {base} seconds={base_s:.1f}")

    t0 = time.perf_counter()
    result = fit_themes(texts, embeddings, params_for(len(texts)), embedding_model=args.model)
    ours_s = time.perf_counter() - t0
    ours = scores(sample.subcategory, sample.label, result.topics)
    print(f"StoryHub themes: {ours} seconds={ours_s:.1f} method={result.method} "
          f"steps={ {k: round(v, 1) for k, v in result.seconds.items()} }")
    print("labels:", "; ".join(t.label for t in result.themes[:12]), "…")

    if args.big and not args.quick:
        out = subprocess.run([sys.executable, __file__, "--data", str(args.data),
                              "--model", args.model, "--_big-child", str(args.big)],
                             capture_output=True, text=True, check=True)
        print("big run:", out.stdout.strip().splitlines()[-1])

    print(f"RESULT nmi_sub={ours['nmi_sub']:.3f} nmi_label={ours['nmi_label']:.3f} "
          f"ari={ours['ari']:.3f} unassigned={ours['unassigned']:.2f} seconds={ours_s:.1f} "
          f"base_nmi_sub={base['nmi_sub']:.3f} base_unassigned={base['unassigned']:.2f}")


if __name__ == "__main__":
    main()
