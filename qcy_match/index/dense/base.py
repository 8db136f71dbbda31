"""What every dense index kind shares: live updates, filtered search with its exact fallback, scores, save/load.

A :class:`DenseIndex` holds a :class:`~.storage.Storage` (how the vectors are kept: ``float32``, ``float16`` or
``sq8``) and a :class:`~.backend.Backend` (the search structure of one kind: ``numpy``, ``flat``, ``hnsw``, ``ivf``,
see :mod:`.kinds`). ``auto`` picks the kind (flat below ``auto_threshold`` vectors, else hnsw) and the storage
(compressed from ``compress_above`` vectors on; see README, "Index kinds and memory").

A filtered search always returns min(k, number of vectors that pass the filter) results: strict filters are
answered exactly on the kept subset; loose ones go through the structure with an ID selector, and any query that
comes back short is answered exactly instead. An HNSW index built with partition labels also searches filters that
keep a few partitions partition by partition (:mod:`.partitions`).

Bit-identical stored rows are kept once (:mod:`.groups`): the store and the structures hold distinct rows (*nodes*),
searches ask for nodes and expand each to the positions holding it, which tie.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ... import threads
from ..mapped import MAPS
from ..topk import best, exact_top_k
from .backend import Backend, Tuning
from .groups import Groups
from .kinds import KINDS, make_backend
from .partitions import Partitions, walk_cost
from .storage import CHUNK, STORAGES, Storage


class DenseIndex:
    """Inner-product search over unit vectors, of any kind and storage.

    Live updates: vectors added after :meth:`fit` form a *delta* searched exactly beside the main structure, and
    deletes are a mask applied inside every search; :meth:`updated` returns a new instance (readers holding the old
    one are undisturbed) and :meth:`compacted` rebuilds one main structure over the live vectors, as a fresh build
    over them would. Positions: main vectors first, then the delta's, in the order added.
    """

    def __init__(self, kind: str = "auto", auto_threshold: int = 50_000, hnsw_m: int = 0, ef_search: int = 0,
                 ef_construction: int = 0, nlist: int = 0, nprobe: int = 0, exact_below: int = 50_000,
                 storage: str = "auto", compress_above: int = 250_000, refine: int = 2,
                 parallel_from: int = threads.PARALLEL_FROM, partition_min: int = 5_000) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
        if storage not in STORAGES:
            raise ValueError(f"unknown index storage {storage!r}; choose one of {', '.join(STORAGES)}")
        self.storage = storage
        self.compress_above = compress_above
        self.refine = max(1, int(refine))
        self.kind = kind
        self.auto_threshold = auto_threshold
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self.ef_construction = ef_construction
        self.nlist = nlist
        self.nprobe = nprobe
        self.exact_below = exact_below
        self.parallel_from = parallel_from  # searches of fewer queries run on one thread (see qcy_match.threads)
        self.partition_min = partition_min  # partitions this large get a graph (see .partitions)

    def params(self) -> dict[str, Any]:
        """Parameters for the manifest."""
        return {"kind": self.kind, "auto_threshold": self.auto_threshold, "hnsw_m": self.hnsw_m,
                "ef_search": self.ef_search, "ef_construction": self.ef_construction, "nlist": self.nlist,
                "nprobe": self.nprobe, "exact_below": self.exact_below, "storage": self.storage,
                "compress_above": self.compress_above, "refine": self.refine, "parallel_from": self.parallel_from,
                "partition_min": self.partition_min}

    @property
    def tuning_(self) -> Tuning:
        """The structure's parameters as built or loaded: those chosen from n (0 in :meth:`params`) resolved."""
        return self.backend_.tuning

    def _tuning(self) -> Tuning:
        return Tuning(hnsw_m=self.hnsw_m, ef_search=self.ef_search, ef_construction=self.ef_construction,
                      nlist=self.nlist, nprobe=self.nprobe, refine=self.refine)

    def fit(self, vectors: np.ndarray, show_progress: bool = False, labels: np.ndarray | None = None,
            rows_of: np.ndarray | None = None) -> DenseIndex:
        """Build the index over (n, d) unit vectors; ``show_progress`` shows a bar of the vectors added.

        ``labels``: a partition label (-1..127) per vector; an HNSW index then also builds a graph per partition of
        at least ``partition_min`` vectors, searched by filters that keep few partitions (see :mod:`.partitions`).

        ``rows_of``: position ``i`` holds row ``rows_of[i]`` of ``vectors`` (records that share a text share its
        vector, as the engine encodes them), so the n × d matrix of every position is never built.
        """
        x = np.asarray(vectors)
        n = len(x) if rows_of is None else len(rows_of)
        kind = self.kind
        if kind == "auto":
            kind = "flat" if n < self.auto_threshold else "hnsw"
        storage = self.storage
        if storage == "auto":
            # float16 measured as small and as accurate as sq8 (which keeps the float16 copy too) and faster.
            storage = "float32" if n < self.compress_above else "float16"
        if x.ndim != 2 or not n:
            storage = "float32"  # nothing to compress, and FAISS needs a dimension
        dtype = np.float32 if storage == "float32" else np.float16
        if x.ndim != 2:
            self.groups_ = Groups(np.arange(n))
            rows = x
        elif rows_of is not None:
            self.groups_, heads = Groups.of(x, dtype).over(rows_of)
            rows = _gather(x, heads, dtype)
        else:
            self.groups_ = Groups.of(x, dtype)
            rows = x if self.groups_.identity else _gather(x, self.groups_.firsts, dtype)
        self.backend_: Backend = make_backend(kind, self._tuning().for_n(len(rows)))
        # No bar object at all unless asked: tqdm takes a process-shared lock even when disabled.
        bar = tqdm(total=len(rows), desc="index", unit="vec") if show_progress else None
        self.backend_.progress = bar
        self.partitions_: Partitions | None = None
        try:
            self.store_: Storage = self.backend_.build(rows, storage)
            if labels is not None and kind == "hnsw" and n:
                if len(labels) != n:
                    raise ValueError(f"{len(labels)} partition labels for {n} vectors")
                parts = Partitions(labels, self.groups_, self.partition_min, self._tuning())
                # Without a partition large enough for a graph, the main path (exact below exact_below) is as good.
                self.partitions_ = parts if parts.large() else None
            if self.partitions_ is not None:
                if bar is not None:
                    bar.reset(total=sum(len(self.partitions_.members[p]) for p in self.partitions_.large()))
                    bar.set_description("partitions")
                self.partitions_.build(self.store_, bar)
        finally:
            self.backend_.progress = None
            if bar is not None:
                bar.close()
        self._start_live()
        return self

    def _start_live(self) -> None:
        """No delta, no deletes: the state after a build or a load."""
        v = self.store_.vectors
        self.delta_ = np.zeros((0, v.shape[1] if v.ndim == 2 else 0), v.dtype)
        self.alive_: np.ndarray | None = None

    @property
    def kind_(self) -> str:
        """The kind built (``auto`` resolved)."""
        return self.backend_.name

    @property
    def storage_(self) -> str:
        """The storage built (``auto`` resolved): float32, float16 or sq8."""
        return self.store_.name

    @property
    def vectors_(self) -> np.ndarray:
        """The main vectors by position, (n, d) float32 or a read-only float16 view (a copy when some repeat: see
        :meth:`rows` for a few of them).
        """
        v = self.store_.vectors
        return v if self.groups_.identity else v[self.groups_.node_of]

    @property
    def n_main(self) -> int:
        """Positions in the main segment (before the delta's)."""
        return len(self.groups_)

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """The stored vectors of ``positions`` (main or delta), as stored (float32 or float16)."""
        pos = np.asarray(positions, dtype=np.int64)
        n_main = self.n_main
        main = pos < n_main
        out = np.empty((len(pos), self.store_.vectors.shape[1]), self.store_.vectors.dtype)
        out[main] = self.store_.vectors[self.groups_.node_of[pos[main]]]
        if not main.all():
            out[~main] = self.delta_[pos[~main] - n_main]
        return out

    def __len__(self) -> int:
        """Positions, deleted ones included."""
        return self.n_main + len(self.delta_)

    # ---- live updates -------------------------------------------------------------------------------------------
    def updated(self, add: np.ndarray | None = None, delete: np.ndarray | list[int] | None = None) -> DenseIndex:
        """A new index with ``delete`` positions masked out and ``add`` vectors appended to the exact delta."""
        new = copy.copy(self)
        alive = np.ones(len(self), bool) if self.alive_ is None else self.alive_.copy()
        alive[np.asarray(delete if delete is not None else [], dtype=np.int64)] = False
        if add is not None and len(add):
            new.delta_ = np.ascontiguousarray(np.vstack([self.delta_, self.store_.like(add)]))
            alive = np.concatenate([alive, np.ones(len(add), bool)])
        new.alive_ = None if alive.all() else alive
        return new

    def _live_stored(self) -> np.ndarray:
        main = self.vectors_
        all_ = np.vstack([main, self.delta_]) if len(self.delta_) else main
        return all_ if self.alive_ is None else all_[self.alive_]

    def live_vectors(self) -> np.ndarray:
        """The vectors of live positions, in position order, as float32 (a copy when storage is compressed)."""
        return np.asarray(self._live_stored(), dtype=np.float32)

    def compacted(self, labels: np.ndarray | None = None) -> DenseIndex:
        """A new index built over the live vectors only: no delta, no deletes (renumbers positions).

        ``labels``: the live vectors' partition labels (the caller knows them for the added ones).
        """
        if not len(self.delta_) and self.alive_ is None:
            return self
        return DenseIndex(**self.params()).fit(self._live_stored(), labels=labels)

    # ---- searching ----------------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, mask: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k positions and inner products per query, best first; -1 and -inf pad short rows.

        ``mask`` (over all positions) keeps the positions it marks; deleted positions are never returned.
        """
        with threads.for_queries(len(queries), self.parallel_from):
            return self._search(queries, k, mask)

    def _search(self, queries: np.ndarray, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if self.alive_ is not None:
            mask = self.alive_ if mask is None else mask & self.alive_
        n_main = self.n_main
        if not len(self.delta_):
            return self._search_main(queries, k, mask)
        q = np.ascontiguousarray(queries, dtype=np.float32)
        i1, s1 = self._search_main(q, k, None if mask is None else mask[:n_main])
        i2, s2 = exact_top_k(self.delta_, q, k, None if mask is None else mask[n_main:])
        i2 = np.where(i2 >= 0, i2 + n_main, -1)
        return best(np.hstack([i1, i2]), np.hstack([s1, s2]), k)

    def _search_main(self, queries: np.ndarray, k: int, mask: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k main positions: the top-k nodes (distinct rows with a kept member), each expanded to its kept
        members (partitions expand their own, to the members in the partition).
        """
        q = np.ascontiguousarray(queries, dtype=np.float32)
        nodes = None
        if mask is not None:
            positions = np.flatnonzero(mask)  # once: the nodes kept and the partitions covered both read it
            nodes = self.groups_.kept(mask, positions)
            if self.partitions_ is not None and len(q):
                parts = self._partitioned(k, nodes, positions)
                if parts is not None:
                    return self.partitions_.search(self.store_, q, k, mask, parts)
        idx, scores = self._search_nodes(q, k, nodes)
        return self.groups_.expand(idx, scores, k, None if mask is None else mask.__getitem__)

    def _partitioned(self, k: int, nodes: np.ndarray, positions: np.ndarray) -> dict[int, np.ndarray] | None:
        """The kept nodes of each partition the mask touches, when searching partition by partition compares fewer
        vectors than the main path (a filter spread over most partitions is served as well by one walk of the main
        graph); no partition walk beats scanning fewer vectors than one unfiltered walk compares, so small kept
        sets are not even counted per partition.
        """
        assert self.partitions_ is not None
        kept = int(nodes.sum())
        t = self.tuning_
        scan = self.backend_.faiss_ is None or kept <= self.exact_below
        main = kept if scan else walk_cost(max(t.ef_search, 2 * k), t.hnsw_m, kept / len(nodes))
        if main <= walk_cost(t.ef_search, t.hnsw_m, 1.0):
            return None
        parts = self.partitions_.covered(positions)
        return parts if self.partitions_.cost(parts, k) < main else None

    def _search_nodes(self, q: np.ndarray, k: int, mask: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k nodes: exact for strict filters, else through the structure, short rows exactly."""
        kept = len(self.store_) if mask is None else int(mask.sum())
        want = min(k, kept)
        if want == 0 or len(q) == 0:
            return np.full((len(q), k), -1, np.int64), np.full((len(q), k), -np.inf, np.float32)
        scan = self.backend_.faiss_ is None or (mask is not None and kept <= self.exact_below)
        if scan:
            return self.store_.exact(q, k, mask)
        idx, scores = self.backend_.search(self.store_, q, k, mask)
        short = (idx[:, :want] < 0).any(axis=1)
        if short.any():
            # Approximate graphs can run dry under a filter; answer those queries exactly instead.
            ei, es = self.store_.exact(q[short], k, mask)
            idx[short], scores[short] = ei, es
        scores = np.where(idx >= 0, scores, -np.inf).astype(np.float32)
        return idx.astype(np.int64), scores

    def score(self, query: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Inner products of one query with the given positions.

        Summed in float64, so a score does not depend on which other rows share the BLAS call (min-max fusion
        would magnify last-bit differences between a live-updated index and a fresh build).
        """
        q = np.asarray(query, dtype=np.float64)
        return (self.rows(candidates).astype(np.float64) @ q).astype(np.float32)

    # ---- persistence --------------------------------------------------------------------------------------------
    def save(self, path: Path) -> list[str]:
        """Write a compacted index (the engine compacts before saving): the vectors, and the FAISS structure of
        kinds slow to rebuild (a float16 HNSW graph holds the vectors itself, so it is written alone).
        """
        if len(self.delta_) or self.alive_ is not None:
            raise ValueError("save a compacted DenseIndex (the engine compacts before saving)")
        files = self.backend_.save(path, self.store_) + self.groups_.save(path)
        return files + (self.partitions_.save(path) if self.partitions_ is not None else [])

    @classmethod
    def load(cls, path: Path, params: dict[str, Any], kind_: str, mmap: bool = True) -> DenseIndex:
        """Read what :meth:`save` wrote, refusing files that disagree with each other or with ``params``.

        ``mmap`` (default): the FAISS structure and stored vectors are memory-mapped read-only, so opening reads
        nothing and only the pages searches touch become resident (shared between processes, reclaimable).
        """
        self = cls(**params)
        self.backend_ = make_backend(kind_, self._tuning())
        # Not on Windows: a mapped file cannot be deleted there, and a save replaces the directory it was read from.
        mmap = mmap and MAPS
        self.store_ = self.backend_.load(path, self.storage, mmap)
        if self.storage not in ("auto", self.store_.name):
            raise ValueError(f"the files hold {self.store_.name} vectors, the parameters say {self.storage}")
        d = self.store_.vectors.shape[1] if self.store_.vectors.ndim == 2 else 0
        self.groups_ = Groups.load(path, len(self.store_))
        self.partitions_ = Partitions.load(path, self.groups_, d, self.partition_min, self._tuning(), mmap)
        self._start_live()
        return self


def _gather(x: np.ndarray, positions: np.ndarray, dtype: type) -> np.ndarray:
    """Rows ``positions`` of ``x`` converted to ``dtype``, a chunk at a time (no whole float32 copy of x)."""
    out: np.ndarray = np.empty((len(positions), x.shape[1]), dtype)
    for s in range(0, len(positions), CHUNK):
        out[s:s + CHUNK] = x[positions[s:s + CHUNK]]
    return out
