"""``hnsw``: FAISS's HNSW graph (the default above ``auto_threshold`` vectors).

Over ``float32`` the graph keeps its own float32 copy; over ``float16`` the graph's storage *is* the store (one
half-precision copy in all, written inside the graph file); over ``sq8`` the graph walks 8-bit codes and its hits are
rescored from the float16 copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...persistence import LAYOUT
from .backend import Backend, qtype
from .storage import CHUNK, Storage, faiss_module, rounded, selector


class HNSWBackend(Backend):
    """``IndexHNSWFlat`` (float32), ``IndexHNSW`` over the float16 store, or ``IndexHNSWSQ`` (8-bit)."""

    name = "hnsw"
    saves_structure = True

    def build(self, x: np.ndarray, storage: str) -> Storage:
        """As every kind builds, except over ``float16``, where the vectors go into the store through the graph."""
        if storage != "float16":
            return super().build(x, storage)
        n, d = x.shape
        codes = Storage.empty_codes(d)
        graph = faiss_module().IndexHNSW(codes, self.tuning.hnsw_m)
        self._construction(graph)
        for s in range(0, n, CHUNK):
            self.add(graph, rounded(x[s:s + CHUNK]))
        self.faiss_ = graph
        return Storage.over(storage, codes, n, d, owner=(graph, codes))

    def structure(self, store: Storage) -> Any:
        """A graph over a float32 store, or an 8-bit one over an ``sq8`` store."""
        faiss = faiss_module()
        d = store.vectors.shape[1]
        if not store.compressed:
            graph = faiss.IndexHNSWFlat(d, self.tuning.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            self._construction(graph)
            for rows in store.chunks():
                self.add(graph, rows)
            return graph
        graph = faiss.IndexHNSWSQ(d, store.qtype, self.tuning.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        self._construction(graph)
        # 8-bit ranges from the exact per-dimension min and max (two rows train the min-max quantizer).
        lo = np.min([rows.min(axis=0) for rows in store.chunks()], axis=0)
        hi = np.max([rows.max(axis=0) for rows in store.chunks()], axis=0)
        graph.train(np.vstack([lo, hi]))
        for rows in store.chunks():
            self.add(graph, rows)
        return graph

    def _construction(self, graph: Any) -> None:
        graph.hnsw.efConstruction = self.tuning.ef_construction
        self.tune(graph)

    def tune(self, index: Any) -> None:
        """Candidates kept per query while walking the graph."""
        index.hnsw.efSearch = self.tuning.ef_search

    def holds_vectors(self, store: Storage) -> bool:
        """A float16 graph's storage is the store."""
        return store.name == "float16"

    def search_params(self, mask: np.ndarray | None, fetch: int) -> Any:
        """The ID selector, and a search breadth of at least twice the hits wanted, widened by the share a filter
        drops (up to 8 times): the walk then meets about as many kept nodes as an unfiltered one meets nodes.
        """
        faiss = faiss_module()
        ef = self.tuning.ef_search
        if mask is not None:
            share = max(float(np.count_nonzero(mask)) / max(len(mask), 1), 1 / 8)
            return faiss.SearchParametersHNSW(sel=selector(mask), efSearch=int(max(ef, 2 * fetch) / share))
        return faiss.SearchParametersHNSW(efSearch=2 * fetch) if fetch > ef else None

    def read_store(self, path: Path, storage: str, index: Any, mmap: bool = True) -> Storage:
        """The written vectors, or, when there are none, the float16 store inside the graph."""
        if not (path / LAYOUT.vectors).is_file() and qtype(index) == "float16":
            codes = faiss_module().downcast_index(index.storage)
            return Storage.over("float16", codes, index.ntotal, index.d, owner=(index, codes))
        return super().read_store(path, storage, index, mmap)
