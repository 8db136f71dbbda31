"""Top-k selection on score vectors (arg-partition, then a sort of the k winners)."""

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
