"""The theme model: BERTopic with settings that suit ten stories as well as a national collection.

Plain BERTopic is tuned for large corpora: on a few dozen passages HDBSCAN calls everything noise,
and on 2,000 comments it leaves a third unassigned. Here:

- pilot-sized collections (under `small_collections.SMALL_MAX_PASSAGES` passages) skip UMAP
  and HDBSCAN: passages are centred and given their story's context, and Ward's tree is cut at
  the simplest stable number of themes (see `small_collections`);
- `AdaptiveReducer` uses UMAP only when there are enough passages for a neighbour graph, and
  scales its neighbourhood with the corpus;
- `AdaptiveClusterer` runs HDBSCAN with a minimum theme size scaled to the corpus, falls back to
  agglomerative clustering (number of themes chosen by silhouette) when density clustering finds
  too few themes, and then gives outliers to their nearest theme so at most MAX_UNASSIGNED of
  passages are left without one;
- large corpora are fitted on a fixed random sample and the rest assigned to the nearest theme;
- facilitators' seed themes use BERTopic's zero-shot mode.

Everything takes a fixed random state, so the same passages give the same themes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from .. import bundled_models, sealed
from . import naming, neighbours, small_collections
from .naming import SPOKEN_FILLER

logger = logging.getLogger(__name__)

UMAP_MIN_PASSAGES = 60


@dataclass
class SeedTheme:
    """A theme a facilitator expects to see, e.g. "Accommodation: housing, hostel, homeless"."""

    name: str
    keywords: list[str] = field(default_factory=list)

    @property
    def prompt(self) -> str:
        return f"{self.name}: {', '.join(self.keywords)}" if self.keywords else self.name

    @classmethod
    def parse_lines(cls, text: str) -> list[SeedTheme]:
        """Read one seed per line, "Name" or "Name: keyword, keyword"."""
        seeds = []
        for line in text.splitlines():
            name, _, words = line.partition(":")
            name = " ".join(name.split())[:80]
            if name:
                seeds.append(cls(name, [w.strip()[:40] for w in words.split(",") if w.strip()]))
        return seeds


@dataclass
class ThemeParams:
    """How a run was fitted; stored with the run so it can be repeated."""

    passages: int
    random_state: int = 42
    reducer: str = "umap"
    n_neighbors: int = 15
    n_components: int = 5
    min_cluster_size: int = 10
    min_samples: int = 3
    min_themes: int = 2
    max_themes: int = 8
    max_unassigned: float = 0.05
    fit_sample: int = 20000
    seed_min_similarity: float = 0.3
    story_context: float = small_collections.STORY_CONTEXT
    seeds: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def params_for(n: int, seeds: Sequence[SeedTheme] = (), random_state: int = 42,
               fit_sample: int = 20000, seed_min_similarity: float = 0.3,
               max_unassigned: float = 0.05) -> ThemeParams:
    """Choose reducer and clustering settings from the number of passages."""
    fitted = min(n, fit_sample)
    if fitted < small_collections.SMALL_MAX_PASSAGES:
        return ThemeParams(
            passages=n, random_state=random_state, reducer="none",
            # A workshop board of one or two themes says little; from 9 passages on, look
            # for at least three (a two-way split is always "stable").
            min_cluster_size=2, min_samples=1,
            min_themes=int(np.clip(round(np.sqrt(fitted) / 2), 3, 6)) if fitted >= 9 else 2,
            max_themes=int(np.clip(max(fitted // 3, min(4, fitted // 2)), 2, 12)),
            max_unassigned=max_unassigned, fit_sample=fit_sample,
            seed_min_similarity=seed_min_similarity, seeds=[asdict(s) for s in seeds])
    return ThemeParams(
        passages=n, random_state=random_state,
        reducer="umap" if fitted >= UMAP_MIN_PASSAGES else "none",
        n_neighbors=int(np.clip(round(np.sqrt(fitted) / 3), 10, 30)),
        n_components=5,
        # About 1 in 200 passages, never fewer than 5: fine themes for a workshop, not noise.
        min_cluster_size=int(np.clip(round(fitted / 200), 5, 100)),
        min_samples=int(max(2, round(np.clip(round(fitted / 200), 5, 100) / 3))),
        min_themes=max(2, int(np.sqrt(fitted) / 5)),
        max_themes=int(min(max(6, round(np.sqrt(fitted))), 60)),
        max_unassigned=max_unassigned, fit_sample=fit_sample,
        seed_min_similarity=seed_min_similarity,
        seeds=[asdict(s) for s in seeds])


class AdaptiveReducer:
    """UMAP for corpora big enough for a neighbour graph; unit-length embeddings otherwise."""

    def __init__(self, params: ThemeParams, groups: Sequence | None = None):
        self.params = params
        self.groups = groups
        self.umap = None

    def fit(self, X, y=None):
        if self.params.reducer == "umap" and len(X) >= UMAP_MIN_PASSAGES:
            # Exact neighbours up to neighbours.EXACT_MAX, NN-descent above (see there).
            self.umap = neighbours.umap(X, n_neighbors=min(self.params.n_neighbors, len(X) - 1),
                                        n_components=self.params.n_components, min_dist=0.0,
                                        metric="cosine", random_state=self.params.random_state,
                                        low_memory=True, force_approximation_algorithm=True)
            self.fitted_ = np.asarray(X)
            self.embedding_ = neighbours.fit_transform(self.umap, X)
        else:
            self.embedding_ = small_collections.story_space(X, self.groups,
                                                            self.params.story_context)
            self.own_ = small_collections.story_space(X) if self.groups is not None else None
        return self

    def fit_transform(self, X, y=None):
        return self.fit(X).embedding_

    def transform(self, X):
        if self.umap is None:
            return small_collections.story_space(X)
        if self.umap.precomputed_knn[0] is not None:  # exact neighbours: no search index
            return neighbours.place(X, self.fitted_, self.embedding_, self.umap.n_neighbors,
                                    "cosine")
        return self.umap.transform(X)


class AdaptiveClusterer:
    """HDBSCAN scaled to the corpus, a fallback when it finds too few themes, few outliers."""

    def __init__(self, params: ThemeParams, reducer: AdaptiveReducer | None = None):
        self.params = params
        self.reducer = reducer
        self.method = ""

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=np.float64)
        n = len(X)
        if self.params.reducer == "none":
            labels, self.stability = small_collections.choose_themes(
                X, self.params.min_themes, self.params.max_themes, self.params.random_state)
            self.method = "ward-stable"
            own = getattr(self.reducer, "own_", None)
            if own is not None and len(own) == n:
                labels = small_collections.own_themes(own, labels, self.reducer.groups)  # type: ignore
            self.labels_ = labels
            self._centroids = _centroids(X, labels)
            return self
        labels = np.full(n, -1)
        # Density needs a neighbour graph: below UMAP_MIN_PASSAGES go straight to the fallback.
        if self.params.reducer == "umap" and n >= 2 * self.params.min_cluster_size:
            import hdbscan

            labels = hdbscan.HDBSCAN(min_cluster_size=self.params.min_cluster_size,
                                     min_samples=self.params.min_samples,
                                     cluster_selection_method="eom").fit(X).labels_
            self.method = "hdbscan"
        found = len(set(labels) - {-1})
        if found < min(self.params.min_themes, max(n // 3, 1)) or (labels == -1).mean() > 0.6:
            labels = _agglomerative(X, self.params)
            self.method = "agglomerative"
        self.labels_ = _reduce_outliers(X, labels, self.params.max_unassigned)
        self._centroids = _centroids(X, self.labels_)
        return self

    def predict(self, X):
        keys, centres = self._centroids
        if not len(keys):
            return np.full(len(X), -1)
        d = ((np.asarray(X)[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
        return keys[d.argmin(1)]


def _unit(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def _centroids(X: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys = np.array(sorted(set(labels.tolist()) - {-1}), dtype=int)
    if not len(keys):
        return keys, np.zeros((0, X.shape[1]))
    return keys, np.stack([X[labels == k].mean(0) for k in keys])


def _agglomerative(X: np.ndarray, params: ThemeParams) -> np.ndarray:
    """Ward clustering with the number of themes that gives the best silhouette."""
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import silhouette_score

    n = len(X)
    if n < 4:
        return np.zeros(n, dtype=int)
    tree = AgglomerativeClustering(n_clusters=None, distance_threshold=0.0,
                                   compute_full_tree=True).fit(X)
    best, best_score = np.zeros(n, dtype=int), -1.0
    for k in range(2, min(params.max_themes, n // 2) + 1):
        labels = _cut(tree, n, k)
        if len(set(labels)) < 2:
            continue
        score = silhouette_score(X, labels, random_state=params.random_state,
                                 sample_size=min(n, 5000))
        if score > best_score + 1e-9:
            best, best_score = labels, score
    return best


def _cut(tree, n: int, k: int) -> np.ndarray:
    """Cut a full agglomerative tree into k clusters (the merges after n - k are undone)."""
    parent = np.arange(2 * n - 1)
    for i, (a, b) in enumerate(tree.children_[: n - k]):
        parent[a] = parent[b] = n + i

    def root(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    roots = [root(i) for i in range(n)]
    mapping = {r: j for j, r in enumerate(dict.fromkeys(roots))}
    return np.array([mapping[r] for r in roots])


def _reduce_outliers(X: np.ndarray, labels: np.ndarray, max_unassigned: float) -> np.ndarray:
    """Give outliers their nearest theme; keep unassigned only the farthest, at most a share.

    An outlier stays out only if it is farther from its nearest theme than that theme's own
    members (95th percentile), and only the farthest of those, up to `max_unassigned`.
    """
    labels = labels.copy()
    keys, centres = _centroids(X, labels)
    out = np.flatnonzero(labels == -1)
    if not len(out) or not len(keys):
        return labels
    dist = np.sqrt(((X[out][:, None, :] - centres[None, :, :]) ** 2).sum(-1))
    nearest, gap = dist.argmin(1), dist.min(1)
    spread = {}
    for j, k in enumerate(keys):
        members = X[labels == k]
        spread[j] = np.percentile(np.sqrt(((members - centres[j]) ** 2).sum(-1)), 95)
    far = np.array([gap[i] > spread[nearest[i]] for i in range(len(out))])
    allowed = int(max_unassigned * len(labels))
    order = np.argsort(-gap)  # farthest first
    keep_out = {i for i in order[:allowed] if far[i]}
    for i in range(len(out)):
        if i not in keep_out:
            labels[out[i]] = keys[nearest[i]]
    return labels


@dataclass
class FoundTheme:
    number: int
    label: str
    keywords: list[str]
    seed: str | None
    size: int
    # The theme's most representative sentence, shown under its name.
    description: str = ""


@dataclass
class ThemeResult:
    topics: list[int]
    themes: list[FoundTheme]
    coords: np.ndarray
    params: ThemeParams
    method: str
    seconds: dict[str, float]
    model: object


# The sentence model when THEME_EMBEDDING_MODEL is empty: all-mpnet-base-v2 measured no better
# on the story, written-text and NHS benchmarks, less stable across random states, and about
# ten times slower (README, "Which sentence model"); no genuine bge-small bundle was found.
DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


@cache
def get_embedder(model: str = "", device: str = "cpu"):
    """Load a sentence-transformers model once per process: a bundled model by name (empty for
    the default), its files checked against their pinned hashes first; else a name or path."""
    from sentence_transformers import SentenceTransformer

    model = model or DEFAULT_EMBEDDING_MODEL
    if bundled_models.is_bundled(model, "sentence"):
        model = str(bundled_models.folder(model))
    return SentenceTransformer(model, device=device)


def check_embedder(model: str = "") -> None:
    """Check a bundled sentence model's files (once per process); ModelError if they differ."""
    model = model or DEFAULT_EMBEDDING_MODEL
    if bundled_models.is_bundled(model, "sentence"):
        bundled_models.folder(model)


def embedding_origin(model: str = "") -> str:
    """Return the published name of the sentence model `model` (as THEME_EMBEDDING_MODEL)."""
    model = model or DEFAULT_EMBEDDING_MODEL
    return bundled_models.MODELS[model].origin if bundled_models.is_bundled(
        model, "sentence") else model


def embed(texts: Sequence[str], model: str = "", batch_size: int = 64) -> np.ndarray:
    return np.asarray(get_embedder(model).encode(list(texts), batch_size=batch_size,
                                                 show_progress_bar=False), dtype=np.float32)


def readable_label(keywords: Sequence[str]) -> str:
    """Turn keywords into a label a facilitator can say aloud: "Housing, hostel and landlord"."""
    words: list[str] = []
    seen: set[str] = set()
    for phrase in keywords:
        for word in phrase.split():
            stem = word.lower().rstrip("s")
            if stem and stem not in seen:
                seen.add(stem)
                words.append(word)
    words = words[:3]
    if not words:
        return "Theme"
    text = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return text[:1].upper() + text[1:]


def keyword_vectorizer(n: int):
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    return CountVectorizer(stop_words=sorted(ENGLISH_STOP_WORDS | SPOKEN_FILLER),
                           ngram_range=(1, 2), min_df=1 if n < 300 else 2,
                           token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z'-]+\b")  # noqa: S106


def fit_themes(texts: Sequence[str], embeddings: np.ndarray, params: ThemeParams,
               embedding_model: str = "",
               progress: Callable[[float], None] = lambda _p: None,
               groups: Sequence | None = None) -> ThemeResult:
    """Find themes in `texts` (with their `embeddings`); return topics per text and the themes.

    `groups` says which story each text comes from (small collections use it as context).
    """
    from bertopic import BERTopic

    started = time.perf_counter()
    seconds: dict[str, float] = {}
    n = len(texts)
    rng = np.random.default_rng(params.random_state)
    fit_idx = (np.sort(rng.choice(n, params.fit_sample, replace=False))
               if n > params.fit_sample else np.arange(n))
    seeds = [SeedTheme(**s) for s in params.seeds]
    reducer = AdaptiveReducer(params, None if groups is None else [groups[i] for i in fit_idx])
    clusterer = AdaptiveClusterer(params, reducer)
    model = BERTopic(
        embedding_model=get_embedder(embedding_model),
        umap_model=reducer,
        hdbscan_model=clusterer,
        vectorizer_model=keyword_vectorizer(len(fit_idx)),
        zeroshot_topic_list=[s.prompt for s in seeds] or None,
        zeroshot_min_similarity=params.seed_min_similarity,
        min_topic_size=2,
        calculate_probabilities=False,
        verbose=False)
    fit_texts = [texts[i] for i in fit_idx]
    topics_fit, _ = model.fit_transform(fit_texts, embeddings[fit_idx])
    progress(70)
    seconds["fit"] = time.perf_counter() - started
    topics = np.full(n, -1)
    topics[fit_idx] = topics_fit
    if len(fit_idx) < n:
        # Fitted on a sample: the rest go to the nearest theme, by cosine to its centre.
        t0 = time.perf_counter()
        rest = np.setdiff1d(np.arange(n), fit_idx)
        topic_ids = np.array(sorted(t for t in set(topics_fit) if t != -1))
        centres = _unit(np.stack([embeddings[fit_idx][np.asarray(topics_fit) == t].mean(0)
                                  for t in topic_ids]))
        for start in range(0, len(rest), 20000):
            part = rest[start:start + 20000]
            topics[part] = topic_ids[(_unit(embeddings[part]) @ centres.T).argmax(1)]
        seconds["assign_rest"] = time.perf_counter() - t0
    progress(80)
    t0 = time.perf_counter()
    coords = map_coordinates(model.umap_model, embeddings, fit_idx, params)
    seconds["map"] = time.perf_counter() - t0
    seed_of = getattr(model, "_topic_id_to_zeroshot_topic_idx", {}) or {}
    t0 = time.perf_counter()
    encode = get_embedder(embedding_model).encode

    def embed_phrases(items: list[str]) -> np.ndarray:
        return np.asarray(encode(items, batch_size=64, show_progress_bar=False))

    topic_list = topics.tolist()
    names = naming.name_themes(texts, topic_list, embeddings, embed_phrases)
    lines = naming.subtitles(texts, topic_list, embeddings,
                             {t: words for t, (_name, words) in names.items()})
    seconds["names"] = time.perf_counter() - t0
    themes = []
    for number in sorted(set(topic_list) - {-1}):
        name, keywords = names.get(number, ("Theme", []))
        seed = seeds[seed_of[number]].name if number in seed_of else None
        themes.append(FoundTheme(number=int(number), label=seed or name,
                                 keywords=keywords, seed=seed,
                                 size=int((topics == number).sum()),
                                 description=lines.get(number, "")))
    seconds["total"] = time.perf_counter() - started
    logger.info("Themed %d passages into %d themes (%s) in %.1fs", n, len(themes),
                clusterer.method or "zero-shot", seconds["total"])
    return ThemeResult(topics=topics.tolist(), themes=themes, coords=coords, params=params,
                       method=clusterer.method or "zero-shot", seconds=seconds, model=model)


def map_coordinates(reducer: AdaptiveReducer, embeddings: np.ndarray, fit_idx: np.ndarray,
                    params: ThemeParams) -> np.ndarray:
    """Return 2-D positions for the theme map (UMAP of the reduced space, or PCA when small)."""
    n = len(embeddings)
    if n < 3:
        return np.zeros((n, 2))
    if reducer.umap is None or n < UMAP_MIN_PASSAGES:
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=params.random_state).fit_transform(
            _unit(embeddings))
    reduced = reducer.embedding_
    if len(fit_idx) < n:
        # Large corpora: place a sample on the map only is enough to read it; project the rest.
        reduced = reducer.transform(embeddings) if n <= 50000 else None
    if reduced is None:
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=params.random_state).fit_transform(
            _unit(embeddings))
    return neighbours.fit_transform(neighbours.umap(
        reduced, n_neighbors=min(15, n - 1), n_components=2, min_dist=0.1,
        random_state=params.random_state, n_epochs=200, force_approximation_algorithm=True),
        reduced)


def warm_up(n: int = small_collections.SMALL_MAX_PASSAGES, dims: int = 384) -> float:
    """Compile UMAP's and HDBSCAN's numba code on random data; return the seconds it took.

    `n` is the fewest passages that take the UMAP path: fewer take the small collections' path,
    which compiles nothing a larger run needs.

    With exact neighbours and numba's disk cache (see `neighbours`) this takes a few seconds
    on a machine that compiled it once, about ten on one that never did. Workers call this
    when they start, so a facilitator's first run does not wait for it.
    """
    started = time.perf_counter()
    X = np.random.default_rng(0).normal(size=(n, dims)).astype(np.float32)
    params = params_for(n)
    reducer = AdaptiveReducer(params).fit(X)
    AdaptiveClusterer(params).fit(reducer.embedding_)
    map_coordinates(reducer, X, np.arange(n), params)
    return time.perf_counter() - started


# What BERTopic's safetensors format writes, and all a saved model may hold: a loader never
# sees another file (a `.bin` or `.pickle` would be unpickled by BERTopic).
MODEL_FILES = ("config.json", "topics.json", "topic_embeddings.safetensors",
               "ctfidf.safetensors", "ctfidf_config.json")


def save_model(result: ThemeResult, folder: Path, embedding_model: str = "") -> None:
    """Save the BERTopic model with safetensors (no pickle), for reuse and audit.

    The files are plain here; they hold every story's words (vocabulary, keywords), so they
    are sealed (`seal_model`) before they are kept.
    """
    folder.mkdir(parents=True, exist_ok=True)
    result.model.save(str(folder), serialization="safetensors",  # type: ignore[attr-defined]
                      save_ctfidf=True,
                      save_embedding_model=embedding_origin(embedding_model))


def seal_model(folder: Path, out: Path, data_key: bytes, file_id: str) -> None:
    """Seal the saved model in `folder` into `out` (AES-256-GCM, storyhub/sealed.py).

    Each file is bound to `file_id` and its name, so a file moved to another run or renamed
    does not open.
    """
    out.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        if (folder / name).is_file():
            sealed.seal_file(folder / name, out / name, data_key, f"{file_id}/{name}")


def load_model(folder: Path, data_key: bytes | None, file_id: str, scratch: Path,
               embedding_model: str = ""):
    """Load a saved model from `folder`, opening its files with `data_key` (or plain ones,
    saved before models were sealed); return the BERTopic model.

    BERTopic reads a folder, so the files are opened into `scratch` (an empty private folder
    the caller removes). The embedding model is given here, never looked up by the name saved
    with the model (that would go to the internet).
    """
    import json

    from bertopic import BERTopic

    if not (folder / "topic_embeddings.safetensors").is_file():
        raise FileNotFoundError(f"no saved theme model in {folder}")
    for name in MODEL_FILES:
        source = folder / name
        if not source.is_file():
            continue
        if sealed.is_sealed(source):
            if data_key is None:
                raise sealed.KeyDestroyed("This theme model's key is gone: it cannot be read.")
            sealed.unseal_to(source, scratch / name, data_key, f"{file_id}/{name}")
        else:
            (scratch / name).write_bytes(source.read_bytes())
    config = json.loads((scratch / "config.json").read_text())
    config.pop("embedding_model", None)
    (scratch / "config.json").write_text(json.dumps(config))
    return BERTopic.load(str(scratch), embedding_model=get_embedder(embedding_model))
