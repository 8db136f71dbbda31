"""Top-k selection: over one score vector (arg-partition, then a sort of the k winners), and per query row."""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest finite scores, best first; ties broken by lower index."""
    valid = np.isfinite(scores)
    n_valid = int(valid.sum())
    k = min(k, n_valid)
    if k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=scores.dtype)
    s = np.where(valid, scores, -np.inf) if n_valid < len(scores) else scores
    if k < len(s):
        # Take every score tied with the k-th so the lower index wins ties, as documented.
        kth = np.partition(-s, k - 1)[k - 1]
        part = np.flatnonzero(-s <= kth)
    else:
        part = np.arange(len(s))
    order = np.lexsort((part, -s[part]))[:k]
    idx = part[order].astype(np.int64)
    return idx, s[idx]


def best(idx: np.ndarray, val: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, best score first, lower position on ties, padding (-1) last: the order one exact search gives.

    Merges per-row candidates from several sources (a main structure and a delta, or rescored hits) into a top-k.
    """
    order = np.lexsort((np.where(idx >= 0, idx, np.iinfo(np.int64).max), -val), axis=1)[:, :k]
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(val, order, axis=1)


def exact_top_k(vectors: np.ndarray, q: np.ndarray, k: int, mask: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k inner products of each query with the rows of ``vectors`` that ``mask`` keeps.

    Returns (len(q), k) positions and scores, best first; -1 and -inf pad rows with fewer than k kept vectors.
    """
    ids = np.arange(len(vectors)) if mask is None else np.flatnonzero(mask)
    idx = np.full((len(q), k), -1, np.int64)
    val = np.full((len(q), k), -np.inf, np.float32)
    if len(ids) == 0:
        return idx, val
    sub = vectors if mask is None else vectors[ids]
    kk = min(k, len(ids))
    for start in range(0, len(q), 256):
        s = q[start:start + 256] @ sub.T
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk] if kk < len(ids) else np.tile(np.arange(len(ids)),
                                                                                        (len(s), 1))
        ps = np.take_along_axis(s, part, axis=1)
        order = np.argsort(-ps, axis=1, kind="stable")
        idx[start:start + len(s), :kk] = ids[np.take_along_axis(part, order, axis=1)]
        val[start:start + len(s), :kk] = np.take_along_axis(ps, order, axis=1)
    return idx, val
