"""UMAP without the minute of compiling: exact neighbours in NumPy, and numba's disk cache.

UMAP finds each point's neighbours with NN-descent (pynndescent), whose numba code is compiled
afresh in every process and is not cached: a worker's first theme run of a few hundred passages
spent 30–55 s compiling it before any work. Up to `EXACT_MAX` points the exact neighbours cost
a fraction of a second in NumPy (a 4,096² similarity matrix is 64 MB) and are what UMAP itself
computes for small data; they are handed to UMAP as `precomputed_knn`, and new points are
placed with `place` (UMAP's transform needs NN-descent's index). Larger corpora keep NN-descent.

UMAP's own numba functions (the layout optimiser, the fuzzy graph) are compiled once per
process too; `enable_disk_cache` turns on numba's on-disk cache for them, so only the first
process on a machine pays (cached code is keyed to the CPU, so another machine compiles its own).
"""

from __future__ import annotations

import logging
import sys
import warnings
from functools import cache

import numpy as np

logger = logging.getLogger(__name__)

EXACT_MAX = 4096  # UMAP's own limit for computing all distances
_CHUNK = 1024


@cache
def enable_disk_cache() -> int:
    """Cache UMAP's and pynndescent's compiled numba code on disk; return how many functions.

    Where no cache folder can be written, numba says so and the code is compiled as before.
    """
    import umap.umap_  # noqa: F401 - load the modules whose functions are cached
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    count = 0
    for name, module in list(sys.modules.items()):
        if not name.startswith(("umap", "pynndescent")) or module is None:
            continue
        for value in list(vars(module).values()):
            uncached = isinstance(getattr(value, "_cache", None), NullCache)
            if isinstance(value, Dispatcher) and uncached:
                try:
                    value.enable_caching()
                except RuntimeError:  # no writable cache folder for this file
                    continue
                count += 1
    logger.debug("numba disk cache on for %d functions", count)
    return count


def _prepared(X: np.ndarray, metric: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if metric == "cosine":
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        return X / np.where(norms == 0, 1, norms)
    if metric != "euclidean":
        raise ValueError(f"exact neighbours for {metric!r} are not implemented")
    return X


def nearest(Q: np.ndarray, X: np.ndarray, k: int, metric: str,
            same: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Each row of `Q`'s `k` nearest rows of `X` and their distances, nearest first.

    With `same` (Q is X), each row is its own first neighbour, as UMAP expects.
    """
    Q, X = _prepared(Q, metric), _prepared(X, metric)
    squares = (X * X).sum(1)
    indices = np.empty((len(Q), k), dtype=np.int32)
    distances = np.empty((len(Q), k), dtype=np.float32)
    for start in range(0, len(Q), _CHUNK):
        part = Q[start:start + _CHUNK]
        if metric == "cosine":
            dist = 1.0 - part @ X.T
        else:
            dist = (part * part).sum(1)[:, None] + squares[None, :] - 2 * (part @ X.T)
        if same:
            rows = np.arange(len(part))
            dist[rows, rows + start] = -1.0
        near = np.argpartition(dist, k - 1, axis=1)[:, :k]
        near_dist = np.take_along_axis(dist, near, 1)
        order = np.lexsort((near, near_dist), axis=1)
        indices[start:start + _CHUNK] = np.take_along_axis(near, order, 1)
        distances[start:start + _CHUNK] = np.take_along_axis(near_dist, order, 1)
    distances = np.maximum(distances, 0.0)
    return indices, np.sqrt(distances) if metric == "euclidean" else distances


def exact_knn(X: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Each row's `k` nearest rows (itself first) and their distances, as UMAP expects them."""
    return nearest(X, X, k, metric, same=True)


def place(Q: np.ndarray, fitted: np.ndarray, embedding: np.ndarray, k: int,
          metric: str) -> np.ndarray:
    """Where new rows go in a fitted UMAP space that has no NN-descent index to transform with.

    A row that is one of the fitted rows keeps its place; any other goes to the mean of its
    `k` nearest fitted rows' places, nearer ones weighing more (UMAP's own starting point
    for `transform`).
    """
    indices, distances = nearest(Q, fitted, min(k, len(fitted)), metric)
    weights = 1.0 / (distances + 1e-6)
    placed = (embedding[indices] * weights[..., None]).sum(1) / weights.sum(1, keepdims=True)
    same = distances[:, 0] <= 1e-6
    placed[same] = embedding[indices[same, 0]]
    return placed.astype(embedding.dtype)


def umap(X: np.ndarray, **options):
    """A fitted-ready `umap.UMAP`: exact neighbours handed over when `X` is small enough."""
    from umap import UMAP

    enable_disk_cache()
    metric = options.get("metric", "euclidean")
    k = options.get("n_neighbors", 15)
    if len(X) <= EXACT_MAX and metric in ("cosine", "euclidean"):
        options = {**options, "precomputed_knn": (*exact_knn(X, k, metric), None)}
    return UMAP(**options)


def fit_transform(model, X: np.ndarray) -> np.ndarray:
    """`model.fit_transform(X)`, without UMAP's notice that precomputed neighbours leave no
    index to transform new data with (`place` does that job for them)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]")
        return model.fit_transform(X)
