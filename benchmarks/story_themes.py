"""The story benchmark: the real theme pipeline on a pilot-sized spoken collection.

    .venv/bin/python benchmarks/themes.py --stories [--cache DIR] [--model NAME]

48 stories written for StoryHub around eight known themes (benchmarks/data/stories/pilot.yaml),
a quarter touching two, told by staff, people on probation and peer mentors, spoken by
espeak-ng in eight voices and transcribed by the real engine (cached, see story_corpus.py).
Each story's transcript goes through what a theme run does: `split_passages`, embedding, and
`fit_themes` with the parameters `params_for` chooses. Reported:

- story_nmi / story_ari: each story's main theme (the theme holding most of its words) against
  its known main theme; passage_nmi: each passage against its story's main theme;
- second_hit: share of two-theme stories also listed under a theme of their second label;
- seed_ari: mean ARI between passage themes over three random states;
- text_ari: ARI between the stories' main themes from the transcripts and from the written text;
- label_hit: share of themes whose name holds a key term of the known theme most of its stories
  have (lemmatised); word_flip: one-word changes in one transcript that changed the number of
  themes, out of those tried;
- seconds: a first run on the collection, from splitting to themes (embedding included);
  passages_per_second (on the line before RESULT): its passages over those seconds;
- a ceiling: the same path told the known number of themes, on the transcripts and on the
  written text (what the embedding model allows, whatever the choice of the number);
- the same figures for plain BERTopic (its defaults, seeded UMAP) on the stories' sentences.

With --quick (CI, a test runs it): two stories per theme, the first spoken and transcribed
(the rest read as written, see `quick_corpus`), two random states and one one-word change:
every step in seconds, the same RESULT line; its figures say the code runs, not how well.
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks import story_corpus

SEEDS = (42, 7, 2024)
QUICK_PER_THEME = 2
QUICK_SPOKEN = 1


@dataclass
class Units:
    """Passages (or sentences) of the collection, with the story each came from."""

    texts: list[str]
    story: list[str]
    words: list[int]


def passages(corpus, segments_of) -> Units:
    """Split each story as a theme run does."""
    from storyhub.themes.passages import split_passages

    texts, story, words = [], [], []
    for s in corpus.stories:
        for p in split_passages(story_corpus.transcript_of(segments_of[s.key])):
            texts.append(p.text)
            story.append(s.key)
            words.append(p.word_count)
    return Units(texts, story, words)


def sentences(corpus, segments_of) -> Units:
    texts, story, words = [], [], []
    for s in corpus.stories:
        text = " ".join(seg.text.strip() for seg in segments_of[s.key])
        for sentence in re.split(r"(?<=[.?!])\s+", text):
            if len(sentence.split()) >= 3:
                texts.append(sentence)
                story.append(s.key)
                words.append(len(sentence.split()))
    return Units(texts, story, words)


def story_main(units: Units, topics: Sequence[int]) -> dict[str, int]:
    """Return story -> the theme holding most of its words (-1 if none)."""
    weight: dict[str, Counter] = defaultdict(Counter)
    for key, topic, words in zip(units.story, topics, units.words, strict=True):
        if topic != -1:
            weight[key][topic] += words
    return {key: (min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] if c else -1)
            for key in dict.fromkeys(units.story) for c in [weight[key]]}


def run_pipeline(units: Units, embeddings: np.ndarray, random_state: int = 42, model: str = ""):
    from storyhub.themes.modeling import fit_themes, params_for

    params = params_for(len(units.texts), random_state=random_state)
    return fit_themes(units.texts, embeddings, params, embedding_model=model,
                      groups=units.story)


def at_known_number(units: Units, embeddings: np.ndarray, k: int) -> np.ndarray:
    """The pipeline's small-collection path told the number of themes: how far choosing the
    number is from the best its passage space allows (a ceiling for the embedding model)."""
    from storyhub.themes import small_collections

    X = small_collections.story_space(embeddings, units.story)
    labels = small_collections._cut(small_collections._tree(X), len(X), k)
    return small_collections.own_themes(small_collections.story_space(embeddings), labels,
                                        units.story)


def lemma_words(text: str) -> list[str]:
    from storyhub.themes.naming import lemma

    return [lemma(w) for w in re.findall(r"[a-z]+", text.lower())]


def label_hit(corpus, units: Units, result) -> float:
    """Share of themes whose name holds a key term of their stories' main known theme."""
    main_of = {s.key: s.main for s in corpus.stories}
    hits = 0
    for theme in result.themes:
        members = [main_of[k] for k, t in zip(units.story, result.topics, strict=True)
                   if t == theme.number]
        known = Counter(members).most_common(1)[0][0]
        name = " " + " ".join(lemma_words(theme.label)) + " "
        terms = [" " + " ".join(lemma_words(term)) + " " for term in corpus.key_terms[known]]
        hits += any(term in name for term in terms)
    return hits / max(len(result.themes), 1)


def second_hit(corpus, units: Units, topics) -> float:
    """Share of two-theme stories with words in a theme whose stories are mostly their second."""
    main_of = {s.key: s.main for s in corpus.stories}
    theme_known = {}
    for t in set(topics) - {-1}:
        members = [main_of[k] for k, x in zip(units.story, topics, strict=True) if x == t]
        theme_known[t] = Counter(members).most_common(1)[0][0]
    two = [s for s in corpus.stories if s.second]
    hit = 0
    for s in two:
        found = {theme_known.get(t) for k, t in zip(units.story, topics, strict=True)
                 if k == s.key}
        hit += s.second in found
    return hit / max(len(two), 1)


def scores(corpus, units: Units, topics) -> dict:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    main = story_main(units, topics)
    keys = [s.key for s in corpus.stories]
    truth = [s.main for s in corpus.stories]
    found = [main[k] for k in keys]
    main_of = {s.key: s.main for s in corpus.stories}
    return {"story_nmi": normalized_mutual_info_score(truth, found),
            "story_ari": adjusted_rand_score(truth, found),
            "passage_nmi": normalized_mutual_info_score([main_of[k] for k in units.story],
                                                        list(topics)),
            "second_hit": second_hit(corpus, units, list(topics)),
            "themes": len(set(topics) - {-1}),
            "unassigned": float(np.mean(np.asarray(topics) == -1))}


def plain_bertopic(units: Units, embeddings: np.ndarray, model: str = "") -> list[int]:
    from bertopic import BERTopic
    from umap import UMAP

    from storyhub.themes.modeling import get_embedder

    umap = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=42)
    bertopic = BERTopic(embedding_model=get_embedder(model), umap_model=umap)
    topics, _ = bertopic.fit_transform(units.texts, embeddings)
    return list(topics)


def one_word_changes(corpus, segments_of, before: int, tries: int = 6,
                     model: str = "") -> list[tuple[str, int, int]]:
    """Change one word in one story's transcript; return (story, themes `before`, after)."""
    from storyhub.themes.modeling import embed

    out = []
    rng = np.random.default_rng(3)
    for key in rng.choice([s.key for s in corpus.stories], tries, replace=False):
        changed = dict(segments_of)
        segs = [_copy(seg) for seg in segments_of[key]]
        seg = segs[len(segs) // 2]
        w = seg.words[len(seg.words) // 2]
        seg.words[len(seg.words) // 2] = type(w)(w.start, w.end, " really", w.probability)
        seg.text = "".join(x.text for x in seg.words)
        changed[key] = segs
        units = passages(corpus, changed)
        result = run_pipeline(units, embed(units.texts, model), model=model)
        out.append((str(key), before, len(result.themes)))
    return out


def _copy(seg):
    from storyhub.transcripts.engines import SegmentResult, WordResult

    return SegmentResult(seg.start, seg.end, seg.text,
                         [WordResult(w.start, w.end, w.text, w.probability) for w in seg.words],
                         seg.speaker)


def quick_corpus(corpus: story_corpus.PilotCorpus,
                 cache) -> tuple[story_corpus.PilotCorpus, dict[str, list]]:
    """Return a small collection and its segments: QUICK_PER_THEME stories of each theme, the
    first QUICK_SPOKEN transcribed as in a full run (and cached), the others as written (the
    theme steps are the same, and transcribing all of them would take minutes)."""
    taken: Counter = Counter()
    stories = []
    for s in corpus.stories:
        if taken[s.main] < QUICK_PER_THEME:
            taken[s.main] += 1
            stories.append(s)
    spoken = story_corpus.PilotCorpus(stories[:QUICK_SPOKEN], corpus.key_terms)
    segments_of = {s.key: story_corpus.written_segments(s.text) for s in stories}
    segments_of.update(story_corpus.transcribe_all(spoken, cache))
    return story_corpus.PilotCorpus(stories, corpus.key_terms), segments_of


def main(cache, quick: bool = False, model: str = "") -> None:
    """Run the benchmark with the sentence model `model` (THEME_EMBEDDING_MODEL; empty for the
    default)."""
    from sklearn.metrics import adjusted_rand_score

    from storyhub.themes import neighbours
    from storyhub.themes.modeling import embed, get_embedder

    corpus = story_corpus.load()
    if quick:
        corpus, segments_of = quick_corpus(corpus, cache)
    else:
        segments_of = story_corpus.transcribe_all(corpus, cache)
    seeds = SEEDS[:2] if quick else SEEDS
    # Loading the model is not part of a run (a worker holds it), nor is compiling plain
    # BERTopic's UMAP: numba's disk cache keeps it from one run to the next.
    get_embedder(model)
    neighbours.enable_disk_cache()
    keys = [s.key for s in corpus.stories]

    started = time.perf_counter()
    units = passages(corpus, segments_of)
    embeddings = embed(units.texts, model)
    first = run_pipeline(units, embeddings, seeds[0], model)
    seconds = time.perf_counter() - started
    ours = scores(corpus, units, first.topics)
    print(f"StoryHub themes: passages={len(units.texts)} method={first.method} "
          + " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in ours.items()) + f" seconds={seconds:.1f}")
    runs = [first.topics] + [run_pipeline(units, embeddings, s, model).topics
                             for s in seeds[1:]]
    pairs = [(a, b) for i, a in enumerate(runs) for b in runs[i + 1:]]
    seed_ari = float(np.mean([adjusted_rand_score(a, b) for a, b in pairs]))

    written = {s.key: story_corpus.written_segments(s.text) for s in corpus.stories}
    w_units = passages(corpus, written)
    w_embeddings = embed(w_units.texts, model)
    w_result = run_pipeline(w_units, w_embeddings, model=model)
    w_main, t_main = story_main(w_units, w_result.topics), story_main(units, first.topics)
    text_ari = adjusted_rand_score([t_main[k] for k in keys], [w_main[k] for k in keys])
    w_scores = scores(corpus, w_units, w_result.topics)
    print(f"on the written text: story_nmi={w_scores['story_nmi']:.3f} "
          f"story_ari={w_scores['story_ari']:.3f} themes={w_scores['themes']}")
    hit = label_hit(corpus, units, first)
    for theme in first.themes:
        members = Counter(s.main for s in corpus.stories
                          if story_main(units, first.topics)[s.key] == theme.number)
        print(f"  {theme.label!r:48} {theme.size:3d} passages  stories: {dict(members)}")
        if theme.description:
            print(f"      “{theme.description[:110]}”")
    known = len(corpus.themes)
    for label, (u, e) in {"transcripts": (units, embeddings),
                          "written text": (w_units, w_embeddings)}.items():
        ceiling = scores(corpus, u, at_known_number(u, e, known))
        print(f"ceiling on the {label}: Ward told the known number of themes ({known}): "
              f"story_nmi={ceiling['story_nmi']:.3f} story_ari={ceiling['story_ari']:.3f}")
    flips = one_word_changes(corpus, segments_of, len(first.themes), tries=1 if quick else 6,
                             model=model)
    flipped = sum(1 for _k, a, b in flips if a != b)
    print("one-word changes (story, themes before, after):", flips)

    s_units = sentences(corpus, segments_of)
    s_emb = embed(s_units.texts, model)
    t0 = time.perf_counter()
    base = scores(corpus, s_units, plain_bertopic(s_units, s_emb, model))
    base_s = time.perf_counter() - t0
    p_base = scores(corpus, units, plain_bertopic(units, embeddings, model))
    print("plain BERTopic on sentences: " + " ".join(
        f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in base.items())
        + f" seconds={base_s:.1f}")
    print("plain BERTopic on StoryHub's passages: " + " ".join(
        f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in p_base.items()))
    print(f"ratios: story_nmi {ours['story_nmi'] / max(base['story_nmi'], 1e-9):.2f}x, "
          f"story_ari {ours['story_ari'] / max(base['story_ari'], 1e-9):.2f}x plain BERTopic")
    print(f"seed_ari={seed_ari:.3f} text_ari={text_ari:.3f} second_hit={ours['second_hit']:.2f} "
          f"word_flip={flipped}/{len(flips)} base_story_nmi={base['story_nmi']:.3f} "
          f"base_story_ari={base['story_ari']:.3f} "
          f"passages_per_second={len(units.texts) / max(seconds, 1e-9):.1f}")
    print(f"RESULT stories={len(keys)} themes={ours['themes']} story_nmi={ours['story_nmi']:.2f} "
          f"story_ari={ours['story_ari']:.2f} seed_ari={seed_ari:.2f} text_ari={text_ari:.2f} "
          f"label_hit={hit:.2f} seconds={seconds:.1f}")
