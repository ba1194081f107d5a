"""Exact neighbours for UMAP: the same neighbours UMAP would compute, and new points placed."""

from __future__ import annotations

import numpy as np
import pytest

from storyhub.themes import modeling, neighbours

pytestmark = pytest.mark.no_database


def _clusters(n: int, dims: int = 24, k: int = 4, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dims))
    return np.concatenate([c + rng.normal(scale=0.5, size=(n // k, dims)) for c in centres])


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_exact_neighbours_match_brute_force_with_each_point_first(metric):
    X = _clusters(300)
    indices, distances = neighbours.exact_knn(X, 10, metric)
    if metric == "cosine":
        unit = X / np.linalg.norm(X, axis=1, keepdims=True)
        full = 1 - unit @ unit.T
    else:
        full = np.linalg.norm(X[:, None] - X[None], axis=2)
    np.fill_diagonal(full, 0)
    expected = np.argsort(full, axis=1, kind="stable")[:, :10]
    assert (indices[:, 0] == np.arange(len(X))).all()
    assert np.allclose(distances[:, 0], 0)
    assert (np.diff(distances, axis=1) >= -1e-6).all()
    # The same sets (ties aside), and the distances of those points.
    assert np.mean([set(a) == set(b) for a, b in zip(indices, expected, strict=True)]) > 0.99
    assert np.allclose(distances, np.take_along_axis(full, indices, 1), atol=1e-4)


def test_placing_fitted_rows_keeps_their_place_and_new_rows_land_among_their_kind():
    X = _clusters(200)
    embedding = np.repeat(np.arange(4, dtype=np.float32), 50)[:, None] * [10.0, 0.0]
    assert np.array_equal(neighbours.place(X[[5, 120]], X, embedding, 10, "cosine"),
                          embedding[[5, 120]])
    new = X[[10, 60, 110, 160]] + 0.01
    placed = neighbours.place(new, X, embedding, 10, "cosine")
    assert np.allclose(placed[:, 0], [0, 10, 20, 30], atol=1.0)


@pytest.mark.slow  # a real BERTopic fit
def test_seeded_fit_at_umap_size_places_the_passages_left_to_cluster(monkeypatch):
    """Seed themes make BERTopic transform the passages no seed took: exact neighbours do it."""
    placed = []
    real_place = neighbours.place

    def place(Q, *args):
        placed.append(len(Q))
        return real_place(Q, *args)

    monkeypatch.setattr(neighbours, "place", place)
    housing = ["I had nowhere to live after prison and slept on a sofa",
               "the hostel was noisy and I wanted a flat of my own",
               "the council housing list was years long for me"]
    work = ["getting a job at the warehouse changed my life",
            "every job application asks about my convictions",
            "the forklift course helped me find paid work"]
    places = ["Leeds", "Hull", "York", "Bradford", "Wakefield", "Sheffield", "Halifax"]
    texts = [f"{line} in {place}, {n} months ago" for n in range(10) for place in places
             for line in housing + work]
    embeddings = modeling.embed(texts)
    seeds = [modeling.SeedTheme("Housing", ["housing", "hostel"])]
    params = modeling.params_for(len(texts), seeds)
    assert params.reducer == "umap"
    result = modeling.fit_themes(texts, embeddings, params)
    assert len(result.topics) == len(texts)
    assert len(result.coords) == len(texts)
    assert placed and placed[0] < len(texts), "the seed took some, the rest were placed"
    assert result.themes and any(t.seed == "Housing" for t in result.themes)
    work_topics = {t for t, text in zip(result.topics, texts, strict=True)
                   if "job" in text or "work" in text}
    housing_topics = {t for t, text in zip(result.topics, texts, strict=True)
                      if "hostel" in text}
    assert not work_topics & housing_topics


def test_the_warm_up_takes_the_path_that_compiles_umap(monkeypatch):
    """Install and each new worker warm up to spare the first real run UMAP's compiling: with
    too few passages the warm-up took the small collections' path and compiled nothing."""
    fitted = []
    real = neighbours.umap
    monkeypatch.setattr(modeling.neighbours, "umap",
                        lambda X, **options: fitted.append(len(X)) or real(X, **options))
    modeling.warm_up()
    assert fitted, "the warm-up never reached UMAP"
