"""Duplicate vectors: positions whose stored rows are bit-identical share one node of the search structure.

HNSW links exact duplicates badly: a node's M neighbours fill with its own copies at distance 0, and the graph falls
apart into cliques (dense recall@10 of 0.30 at 1M realistic records, whose titles repeat). So the structures (the main
graph and the partition graphs) and the store hold each distinct row once, and :class:`Groups` maps the distinct rows
(*nodes*) to the positions holding them (*members*, a CSR layout). A search asks for the top-k nodes and expands each
to its members, which all tie; members come out in position order.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ...persistence import LAYOUT

# Rows hashed at a time: the uint64 products of a chunk take 8 bytes per word, 256 MiB at 512-d float16.
CHUNK = 65_536


class Groups:
    """Which node (distinct stored row) each main position holds, and each node's member positions.

    ``node_of`` (n,) maps positions to nodes, numbered in the order of their first position; ``order`` lists the
    positions node by node (in position order within a node) and ``starts`` (nodes + 1) delimits each node's run.
    ``identity`` (no duplicates) makes every mapping a no-op.
    """

    def __init__(self, node_of: np.ndarray) -> None:
        self.node_of = np.asarray(node_of, dtype=np.int64)
        n = len(self.node_of)
        counts = np.bincount(self.node_of, minlength=0) if n else np.zeros(0, np.int64)
        self.nodes = len(counts)
        self.identity = self.nodes == n
        if self.identity:
            self.order = np.arange(n)
            self.starts = np.arange(n + 1)
        else:
            self.order = np.argsort(self.node_of, kind="stable")
            self.starts = np.concatenate([[0], np.cumsum(counts)])

    @classmethod
    def of(cls, x: np.ndarray, dtype: np.dtype | type) -> Groups:
        """Group the rows of ``x`` as stored in ``dtype`` (rows bit-identical there share a node).

        Rows are hashed a chunk at a time (a sum of their words times random odd multipliers) and grouped by hash;
        every row is then compared with its node's first row, and should two different rows ever share a hash, the
        rows are grouped by their bytes instead.
        """
        n = len(x)
        if not n:
            return cls(np.zeros(0, np.int64))
        hashes = np.empty(n, np.uint64)
        weights = None
        for s in range(0, n, CHUNK):
            words = _words(np.asarray(x[s:s + CHUNK], dtype=dtype))
            if weights is None:
                weights = np.random.default_rng(0).integers(1, 2 ** 63, words.shape[1], dtype=np.uint64) | 1
            with np.errstate(over="ignore"):
                hashes[s:s + CHUNK] = (words * weights).sum(axis=1, dtype=np.uint64)
        first, inverse = np.unique(hashes, return_index=True, return_inverse=True)[1:]
        if len(first) == n:
            return cls(np.arange(n))
        groups = cls(_by_first(first, inverse.ravel()))
        heads = groups.firsts
        for s in range(0, n, CHUNK):
            rows = _words(np.asarray(x[s:s + CHUNK], dtype=dtype))
            if not np.array_equal(rows, _words(np.asarray(x[heads[groups.node_of[s:s + CHUNK]]], dtype=dtype))):
                raw = np.ascontiguousarray(np.asarray(x, dtype=dtype)).view(np.uint8).reshape(n, -1)
                first, inverse = np.unique(raw, axis=0, return_index=True, return_inverse=True)[1:]
                return cls(_by_first(first, inverse.ravel()))
        return groups

    def over(self, rows_of: np.ndarray) -> tuple[Groups, np.ndarray]:
        """The groups of positions that hold the rows ``rows_of`` of the rows grouped here (positions whose rows
        share a node share one), and the row each of their nodes is built from.
        """
        node = self.node_of[np.asarray(rows_of, dtype=np.int64)]
        used, first, inverse = np.unique(node, return_index=True, return_inverse=True)
        heads = self.firsts[used[np.argsort(first, kind="stable")]]
        return Groups(_by_first(first, inverse.ravel())), heads

    def __len__(self) -> int:
        """Positions."""
        return len(self.node_of)

    @property
    def firsts(self) -> np.ndarray:
        """Each node's first position (the row it is built from)."""
        return self.order[self.starts[:-1]]

    def kept(self, mask: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """The nodes with at least one kept member, from the mask and its kept ``positions`` (np.flatnonzero)."""
        if self.identity:
            return mask
        out = np.zeros(self.nodes, bool)
        out[self.node_of[positions]] = True  # a third of the time of indexing by the mask at 300k
        return out

    def expand(self, nodes: np.ndarray, scores: np.ndarray, k: int,
               keep: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k positions from top nodes (best first, -1 padded): the nodes' kept members, best first, then by
        position.

        ``keep`` tells which of some positions are kept (None: all). Every node passed must have a kept member, so
        k nodes give k positions (and without duplicates, the nodes are the positions).
        """
        nodes = np.asarray(nodes, dtype=np.int64)
        q, width = nodes.shape
        if self.identity:
            out_i, out_s = np.full((q, k), -1, np.int64), np.full((q, k), -np.inf, np.float32)
            w = min(k, width)
            out_i[:, :w], out_s[:, :w] = nodes[:, :w], scores[:, :w]
            return out_i, out_s
        flat = nodes.ravel()
        valid = flat >= 0
        u = np.where(valid, flat, 0)
        count = np.where(valid, self.starts[u + 1] - self.starts[u], 0)
        if keep is None:
            count = np.minimum(count, k)  # the first k members of a node are all a row can take from it
        pair = np.repeat(np.arange(len(flat)), count)
        within = np.arange(len(pair)) - np.repeat(np.cumsum(count) - count, count)
        pos = self.order[self.starts[u[pair]] + within]
        if keep is not None:
            ok = keep(pos)
            pair, pos = pair[ok], pos[ok]
        row = pair // width
        score = np.asarray(scores, dtype=np.float32).ravel()[pair]
        # Best first and, within a tie, lower position first (as an exact search orders them), whichever node holds
        # the position: the k nodes asked for hold the k lowest positions of a tie at the cut, their first ones.
        order = np.lexsort((pos, -score, row))
        row, pos, score = row[order], pos[order], score[order]
        rank = np.arange(len(row)) - np.searchsorted(row, np.arange(q))[row]
        take = rank < k
        out_i, out_s = np.full((q, k), -1, np.int64), np.full((q, k), -np.inf, np.float32)
        out_i[row[take], rank[take]] = pos[take]
        out_s[row[take], rank[take]] = score[take]
        return out_i, out_s

    # ---- persistence --------------------------------------------------------------------------------------------
    def save(self, path: Path) -> list[str]:
        """The node of each position (nothing when every row is distinct)."""
        if self.identity:
            return []
        np.save(path / LAYOUT.groups, self.node_of.astype(np.int32), allow_pickle=False)
        return [LAYOUT.groups]

    @classmethod
    def load(cls, path: Path, nodes: int) -> Groups:
        """What :meth:`save` wrote, checked against the ``nodes`` rows stored (identity when there is no file)."""
        file = path / LAYOUT.groups
        if not file.is_file():
            return cls(np.arange(nodes))
        node_of = np.load(file, allow_pickle=False)
        if node_of.dtype != np.int32 or node_of.ndim != 1:
            raise ValueError(f"{LAYOUT.groups} holds {node_of.dtype} of shape {node_of.shape}, expected int32")
        counts = np.bincount(node_of[node_of >= 0], minlength=nodes) if len(node_of) else np.zeros(0, np.int64)
        if (node_of < 0).any() or len(counts) != nodes or (counts == 0).any():
            raise ValueError(f"{LAYOUT.groups} disagrees with the {nodes} stored vectors")
        return cls(node_of)


def _by_first(first: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """Node of each row, the nodes numbered in the order of their first row (so ties come out in position order)."""
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse]


def _words(rows: np.ndarray) -> np.ndarray:
    """Rows as unsigned integer words (uint64 where the row's bytes allow it), for hashing and comparing."""
    raw = np.ascontiguousarray(rows).view(np.uint8).reshape(len(rows), -1)
    if raw.shape[1] % 8 == 0:
        return raw.view(np.uint64)
    return raw.astype(np.uint64)
