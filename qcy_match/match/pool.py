"""One query's candidate pool: each signal's top list with both signals' scores, merged across shards, then fused.

The engine takes the BM25 top-``candidates`` and the dense top-``candidates`` of a query and fuses both signals
over their union (:mod:`.fusion`); the fusion's normalisations (BM25 over its pool maximum, dense min-max) read the
whole pool. A sharded index computes each shard's pool, then :func:`merge` keeps each signal's global
top-``candidates`` of the shards' top lists (the global top list is inside the union of the shards' ones), so
:func:`fused` sees exactly the pool an unsharded index would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from .fusion import fuse


@dataclasses.dataclass(frozen=True)
class Pool:
    """Candidates of one query: keys (positions, or global keys after a merge), their BM25 and dense scores, and
    their 1-based rank in each signal's top list (0: not in it). Keys are unique and increasing.
    """

    keys: np.ndarray
    sparse: np.ndarray
    dense: np.ndarray
    sparse_rank: np.ndarray
    dense_rank: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)


def pool_of(sparse_top: np.ndarray, dense_top: np.ndarray, scores: np.ndarray, dense_scores: Any) -> Pool:
    """The pool of both top lists (positions, best first) of one searched part; ``scores`` holds the BM25 score of
    each of ``sparse_top`` then of each of ``dense_top``, ``dense_scores(positions)`` gives the dense ones.
    """
    keys, at = np.unique(np.concatenate([sparse_top, dense_top]).astype(np.int64), return_index=True)
    return Pool(keys, np.asarray(scores, np.float32)[at], np.asarray(dense_scores(keys), np.float32),
                _ranks(keys, sparse_top), _ranks(keys, dense_top))


def _ranks(keys: np.ndarray, top: np.ndarray) -> np.ndarray:
    out = np.zeros(len(keys), np.int64)
    out[np.searchsorted(keys, top)] = np.arange(1, len(top) + 1)
    return out


def merge(pools: Sequence[Pool], offsets: Sequence[int] | np.ndarray, size: int) -> Pool:
    """The pool over all parts: each signal's best ``size`` of the parts' top lists (ties: earlier part, then its
    own rank), keyed ``offsets[part] + key``.
    """
    keys = np.concatenate([p.keys + off for p, off in zip(pools, offsets, strict=True)]).astype(np.int64)
    part = np.concatenate([np.full(len(p), i, np.int64) for i, p in enumerate(pools)])
    sparse = np.concatenate([p.sparse for p in pools])
    dense = np.concatenate([p.dense for p in pools])
    ranks = []
    for score, rank in ((sparse, np.concatenate([p.sparse_rank for p in pools])),
                        (dense, np.concatenate([p.dense_rank for p in pools]))):
        inside = np.flatnonzero(rank > 0)
        order = inside[np.lexsort((rank[inside], part[inside], -score[inside]))][:size]
        r = np.zeros(len(keys), np.int64)
        r[order] = np.arange(1, len(order) + 1)
        ranks.append(r)
    keep = (ranks[0] > 0) | (ranks[1] > 0)
    order = np.argsort(keys[keep], kind="stable")
    pick = np.flatnonzero(keep)[order]
    return Pool(keys[pick], sparse[pick], dense[pick], ranks[0][pick], ranks[1][pick])


def fused(pool: Pool, k: int, dense_weight: float, method: str
          ) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """The best ``k`` keys of the pool by fused score (ties: lower key), their scores, and each one's signals."""
    if not len(pool):
        return np.empty(0, np.int64), np.empty(0, np.float32), []
    score = fuse(pool.sparse, pool.dense, dense_weight, method)
    order = np.lexsort((pool.keys, -score))[:k]
    signals = [{"bm25_score": round(float(pool.sparse[o]), 4), "bm25_rank": int(pool.sparse_rank[o]) or None,
                "dense_score": round(float(pool.dense[o]), 4), "dense_rank": int(pool.dense_rank[o]) or None}
               for o in order]
    return pool.keys[order], score[order], signals
