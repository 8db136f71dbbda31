"""Fusing sparse (BM25) and dense scores over a candidate pool, as pure functions."""

from __future__ import annotations

import numpy as np

METHODS = ("minmax", "rrf")


def minmax(x: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] over the pool; a constant signal contributes nothing."""
    lo, hi = float(np.min(x)), float(np.max(x))
    if hi - lo < 1e-9:
        return np.zeros_like(x, dtype=np.float32)
    return ((x - lo) / (hi - lo)).astype(np.float32)


def ranks(x: np.ndarray) -> np.ndarray:
    """1-based rank of each entry, highest first."""
    order = np.argsort(-x, kind="stable")
    r = np.empty(len(x), dtype=np.int64)
    r[order] = np.arange(1, len(x) + 1)
    return r


def fuse(sparse: np.ndarray, dense: np.ndarray, dense_weight: float, method: str = "minmax",
         rrf_k: float = 60.0) -> np.ndarray:
    """Fused score of each candidate.

    ``minmax``: BM25 divided by its pool maximum (so a record that matches every query term keeps its lead) and
    the dense cosine min-max scaled over the pool, mixed as (1 - w)·sparse + w·dense. ``rrf``: reciprocal-rank
    fusion, kept as a reference point.
    """
    if method == "rrf":
        return ((1 - dense_weight) / (rrf_k + ranks(sparse)) + dense_weight / (rrf_k + ranks(dense))).astype(
            np.float32)
    if method != "minmax":
        raise ValueError(f"unknown fusion {method!r}; choose one of {', '.join(METHODS)}")
    top = float(np.max(sparse)) if len(sparse) else 0.0
    s = sparse / top if top > 0 else np.zeros_like(sparse)
    return ((1 - dense_weight) * s + dense_weight * minmax(dense)).astype(np.float32)
