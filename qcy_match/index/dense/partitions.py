"""Per-partition search: filtered queries that keep a few partitions search only those partitions.

Every main vector carries a partition label (the engine gives each record its GB/T 门类, -1 for none). A partition
of at least ``partition_min`` vectors gets its own HNSW graph over 8-bit codes (half the memory of a float16 copy;
hits are rescored from the main store, as an ``sq8`` graph's are) and a local → global position map. A filtered
search then visits each partition the filter touches: exactly when it keeps few of the partition's vectors (or the
partition has no graph), through the partition's graph otherwise (with a local ID selector unless every vector is
kept), and merges the per-partition top-k. An industry filter keeps whole partitions or a large share of one, so it
walks one small graph unfiltered instead of the whole graph with a selector, or scanning every kept vector.

Partitions hold nodes (distinct stored rows, :mod:`.groups`): a partition's members are the nodes with a position
labelled with it, and the top nodes a partition finds are expanded to their kept positions labelled with it (so a
node shared by two partitions yields different positions from each).

The result does not depend on the labels being right: a filter across partitions is answered by searching each of
them, and any partition that comes back short is answered exactly (never a short list).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from ...persistence import LAYOUT
from ..topk import best, exact_top_k
from .backend import Tuning, _read
from .groups import Groups
from .storage import CHUNK, Storage, faiss_module, selector

# Below this share of a partition kept, its graph is not walked: the walk would meet too few kept nodes (the main
# graph's widening stops at the same share).
MIN_SHARE = 1 / 8
# What one partition visited costs beyond its vectors (Python, gathering, merging), in vectors compared.
VISIT = 500


def walk_cost(ef: int, m: int, share: float) -> float:
    """Vectors compared by one graph walk of breadth ``ef`` widened by the kept ``share``: about M per node met."""
    return ef / max(share, MIN_SHARE) * m


def exact_among(store: Storage, q: np.ndarray, k: int, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k over the stored rows (nodes) ``positions`` (increasing), gathered rather than scanned through."""
    rows = np.asarray(store.vectors[positions], dtype=np.float32)
    idx, val = exact_top_k(rows, q, k, None)
    return np.where(idx >= 0, positions[np.maximum(idx, 0)], -1), val


class Partitions:
    """Partition labels of the main positions, the nodes of each partition, and graphs over the large partitions."""

    def __init__(self, labels: np.ndarray, groups: Groups, minimum: int, tuning: Tuning) -> None:
        self.labels = np.asarray(labels, dtype=np.int8)
        self.groups = groups
        self.minimum = minimum
        self.ids = np.unique(self.labels)
        order = np.argsort(self.labels, kind="stable")
        starts = np.searchsorted(self.labels[order], self.ids)
        ends = np.append(starts[1:], len(order))
        self.members = {int(p): self._nodes(order[s:e]) for p, s, e in zip(self.ids, starts, ends, strict=True)}
        # Positions per partition: what partition_min counts (a partition of many records repeating few vectors
        # still gets a graph, walked where scanning its nodes would compare more).
        self.sizes = {int(p): int(e - s) for p, s, e in zip(self.ids, starts, ends, strict=True)}
        self.graphs: dict[int, Any] = {}
        # The parameters for the whole index's records (more than the main graph's nodes when vectors repeat): a
        # partition's graph is smaller, so the same breadth costs less there and finds more (partitions of a few
        # thousand would otherwise get efSearch 64; an 8-bit graph over 8,441 of 12,496 distinct vectors found
        # 0.976 of the exact top-10 at the main graph's efSearch 72).
        self.tuning = tuning.for_n(len(self.labels))

    def _nodes(self, positions: np.ndarray) -> np.ndarray:
        """The distinct nodes of increasing ``positions``, increasing (through a bitmap: a hash-based unique of
        tens of thousands of positions costs more than the walk it prepares).
        """
        if self.groups.identity:
            return positions
        seen = np.zeros(self.groups.nodes, bool)
        seen[self.groups.node_of[positions]] = True
        return np.flatnonzero(seen)

    def large(self) -> list[int]:
        """The labels of the partitions that get a graph."""
        return [p for p, size in self.sizes.items() if size >= self.minimum]

    def build(self, store: Storage, progress: Any = None) -> None:
        """An 8-bit HNSW graph over each large partition (ranges from its exact per-dimension min and max)."""
        faiss = faiss_module()
        d = store.vectors.shape[1]
        for p in self.large():
            pos = self.members[p]
            t = self.tuning
            graph = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, t.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = t.ef_construction
            graph.hnsw.efSearch = t.ef_search
            chunks = [pos[s:s + CHUNK] for s in range(0, len(pos), CHUNK)]
            lo = np.min([store.vectors[c].min(axis=0) for c in chunks], axis=0).astype(np.float32)
            hi = np.max([store.vectors[c].max(axis=0) for c in chunks], axis=0).astype(np.float32)
            graph.train(np.vstack([lo, hi]))
            for c in chunks:
                graph.add(np.ascontiguousarray(store.vectors[c], dtype=np.float32))
                if progress is not None:
                    progress.update(len(c))
            self.graphs[p] = graph

    def covered(self, kept: np.ndarray) -> dict[int, np.ndarray]:
        """The kept nodes of each partition the kept positions (increasing) touch: those with a kept position
        labelled with it.
        """
        labels = self.labels[kept]
        present = np.flatnonzero(np.bincount(labels.astype(np.intp) + 1, minlength=1)) - 1  # a quarter of np.unique
        return {int(p): self._nodes(kept[labels == p]) for p in present}

    def _walks(self, p: int, kept: int, k: int) -> tuple[bool, float]:
        """Whether partition ``p`` is walked (else scanned) when ``kept`` of it are kept, and what that costs."""
        share = kept / len(self.members[p])
        if p not in self.graphs or share < MIN_SHARE:
            return False, kept + VISIT
        walk = walk_cost(max(self.tuning.ef_search, 4 * k), self.tuning.hnsw_m, share)
        return walk < kept, min(walk, kept) + VISIT

    def cost(self, kept: dict[int, np.ndarray], k: int) -> float:
        """What :meth:`search` costs for these kept positions, in vectors compared (to choose it or not)."""
        return sum(self._walks(p, len(pos), k)[1] for p, pos in kept.items())

    def search(self, store: Storage, q: np.ndarray, k: int, mask: np.ndarray, kept: dict[int, np.ndarray]
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k main positions over the kept positions of each partition, merged: each partition walked or
        scanned, whichever compares fewer vectors.
        """
        idx_parts, val_parts = [], []
        for p, pos in kept.items():
            if self._walks(p, len(pos), k)[0]:
                i, v = self._walk(store, q, k, p, pos)
            else:
                i, v = exact_among(store, q, k, pos)
            i, v = self.groups.expand(i, v, k, functools.partial(self._kept_in, mask, p))
            idx_parts.append(i)
            val_parts.append(v)
        return best(np.hstack(idx_parts), np.hstack(val_parts), k)

    def _kept_in(self, mask: np.ndarray, p: int, positions: np.ndarray) -> np.ndarray:
        """Which of ``positions`` the mask keeps and partition ``p`` holds."""
        out: np.ndarray = mask[positions] & (self.labels[positions] == p)
        return out

    def _walk(self, store: Storage, q: np.ndarray, k: int, p: int, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of the kept nodes ``pos`` through partition ``p``'s graph, rescored from the store; short rows
        answered exactly.
        """
        faiss = faiss_module()
        members = self.members[p]
        t = self.tuning
        fetch = min(len(pos), k * max(t.refine, 2))
        share = len(pos) / len(members)
        ef = int(max(t.ef_search, 2 * fetch) / share)
        if len(pos) == len(members):
            params = faiss.SearchParametersHNSW(efSearch=ef)
        else:
            local = np.zeros(len(members), bool)
            local[np.searchsorted(members, pos)] = True
            params = faiss.SearchParametersHNSW(sel=selector(local), efSearch=ef)
        _, local = self.graphs[p].search(q, fetch, params=params)
        glob = np.where(local >= 0, members[np.maximum(local, 0)], -1)
        rows = np.asarray(store.vectors[np.maximum(glob, 0).ravel()], dtype=np.float32)
        scores = np.einsum("qd,qkd->qk", q, rows.reshape(len(q), fetch, -1))
        idx, val = best(glob.astype(np.int64), np.where(glob >= 0, scores, -np.inf).astype(np.float32), k)
        short = (idx[:, :min(k, len(pos))] < 0).any(axis=1)
        if short.any():
            idx[short], val[short] = exact_among(store, q[short], k, pos)
        return idx, val

    # ---- persistence --------------------------------------------------------------------------------------------
    def save(self, path: Path) -> list[str]:
        """The labels, and one graph file per large partition (named by its label + 1, so -1 is file 0)."""
        np.save(path / LAYOUT.partitions, self.labels, allow_pickle=False)
        files = [LAYOUT.partitions]
        for p, graph in self.graphs.items():
            name = LAYOUT.partition(p + 1)
            faiss_module().write_index(graph, str(path / name))
            files.append(name)
        return files

    @classmethod
    def load(cls, path: Path, groups: Groups, d: int, minimum: int, tuning: Tuning, mmap: bool
             ) -> Partitions | None:
        """What :meth:`save` wrote (None when the index has no labels), checked against the main positions."""
        file = path / LAYOUT.partitions
        if not file.is_file():
            return None
        labels = np.load(file, allow_pickle=False)
        n = len(groups)
        if labels.dtype != np.int8 or labels.shape != (n,):
            raise ValueError(f"{LAYOUT.partitions} holds {labels.dtype} of shape {labels.shape}, expected {n} int8")
        self = cls(labels, groups, minimum, tuning)
        for p in self.large():
            graph = _read(path / LAYOUT.partition(p + 1), mmap)
            if graph.ntotal != len(self.members[p]) or graph.d != d:
                raise ValueError(f"{LAYOUT.partition(p + 1)} disagrees with {LAYOUT.partitions}")
            graph.hnsw.efSearch = self.tuning.ef_search
            self.graphs[p] = graph
        return self
