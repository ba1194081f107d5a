"""Themes for pilot-sized collections (up to SMALL_MAX_PASSAGES passages).

A pilot gathers about 40 stories: too few for UMAP's neighbour graph or for density clustering,
and few enough that one word of a transcript can move a silhouette maximum. Here:

- passages are centred on the collection's mean (every story is about probation: the shared
  direction says nothing about themes) and each is pulled towards its story's mean by
  STORY_CONTEXT, so a story's passages stay together unless they really differ;
- a passage whose own words are clearly nearer another theme than its story's goes there, so
  a story that tells two themes is listed under both;
- Ward's tree is cut at the number of themes that is *stable*: the smallest number whose
  cuts agree with cuts of random 80% subsamples (ARI) within noise of the best number;
  silhouette keeps rising with the number of themes on such collections and picks none.

Measured on benchmarks/themes.py --stories (48 spoken stories, 8 known themes); see the
benchmark's docstring and the issue note for what else was tried.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SMALL_MAX_PASSAGES = 400
STORY_CONTEXT = 0.5
SUBSAMPLES = 60
SUBSAMPLE_SHARE = 0.8
# A number of themes is as stable as the best if within this much, or two standard errors.
STABILITY_NOISE = 0.04
# A passage of a story with several goes to the theme its own words are nearest, if nearer
# than its story's theme by this much (cosine): a story that tells two themes is in both.
OWN_THEME_MARGIN = 0.03


def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def story_space(X: np.ndarray, groups: Sequence | None = None,
                context: float = STORY_CONTEXT) -> np.ndarray:
    """Return centred unit vectors, each pulled towards its story's mean by `context`."""
    X = np.asarray(X, dtype=np.float64)
    X = _unit(X - X.mean(0)) if len(X) > 1 else _unit(X)
    if groups is None or context <= 0 or len(groups) != len(X):
        return X
    keys = {g: i for i, g in enumerate(dict.fromkeys(groups))}
    index = np.array([keys[g] for g in groups])
    means = np.zeros((len(keys), X.shape[1]))
    np.add.at(means, index, X)
    return _unit((1 - context) * X + context * _unit(means)[index])


def _cut(children: np.ndarray, n: int, k: int) -> np.ndarray:
    """Cut a full agglomerative tree into k clusters, numbered by first member."""
    parent = np.arange(2 * n - 1)
    for i, (a, b) in enumerate(children[: n - k]):
        parent[a] = parent[b] = n + i
    roots = []
    for x in range(n):
        while parent[x] != x:
            x = parent[x]
        roots.append(x)
    mapping = {r: j for j, r in enumerate(dict.fromkeys(roots))}
    return np.array([mapping[r] for r in roots])


def _tree(X: np.ndarray) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    return AgglomerativeClustering(n_clusters=None, distance_threshold=0.0,
                                   compute_full_tree=True).fit(X).children_


def stability(X: np.ndarray, ks: Sequence[int], random_state: int,
              runs: int = SUBSAMPLES) -> dict[int, tuple[float, float]]:
    """Return k -> (mean, standard error) of the ARI between the whole tree's cut and cuts
    of the trees of random subsamples, on the passages they share."""
    from sklearn.metrics import adjusted_rand_score

    n = len(X)
    full = _tree(X)
    cuts = {k: _cut(full, n, k) for k in ks}
    rng = np.random.default_rng(random_state)
    found: dict[int, list[float]] = {k: [] for k in ks}
    size = max(3, int(round(SUBSAMPLE_SHARE * n)))
    for _ in range(runs):
        idx = np.sort(rng.choice(n, size, replace=False))
        part = _tree(X[idx])
        for k in ks:
            if k < size:
                found[k].append(adjusted_rand_score(cuts[k][idx], _cut(part, size, k)))
    return {k: (float(np.mean(v)), float(np.std(v) / np.sqrt(len(v))))
            for k, v in found.items() if v}


def choose_themes(X: np.ndarray, min_themes: int, max_themes: int,
                  random_state: int) -> tuple[np.ndarray, dict[int, tuple[float, float]]]:
    """Return Ward labels at the simplest stable number of themes, and the stabilities."""
    n = len(X)
    if n < 4:
        return np.zeros(n, dtype=int), {}
    top = max(2, min(max_themes, n // 2))
    ks = list(range(max(2, min(min_themes, top)), top + 1))
    scores = stability(X, ks, random_state)
    if not scores:
        return np.zeros(n, dtype=int), {}
    best_k = max(scores, key=lambda k: (scores[k][0], -k))
    best, error = scores[best_k]
    floor = best - max(STABILITY_NOISE, 2 * error)
    k = min(k for k, (mean, _se) in scores.items() if mean >= floor)
    return _cut(_tree(X), n, k), scores


def own_themes(X: np.ndarray, labels: np.ndarray, groups: Sequence,
               margin: float = OWN_THEME_MARGIN) -> np.ndarray:
    """Move passages of many-passage stories to the theme their own words are clearly nearest.

    `X` is the passages without story context (centred unit vectors).
    """
    keys = sorted(set(labels.tolist()))
    if len(keys) < 2:
        return labels
    centres = _unit(np.stack([X[labels == k].mean(0) for k in keys]))
    sims = X @ centres.T
    position = {k: j for j, k in enumerate(keys)}
    own = sims[np.arange(len(X)), [position[k] for k in labels]]
    sizes: dict = {}
    for g in groups:
        sizes[g] = sizes.get(g, 0) + 1
    out = labels.copy()
    for i, g in enumerate(groups):
        if sizes[g] > 1 and sims[i].max() - own[i] > margin:
            out[i] = keys[int(sims[i].argmax())]
    return out
