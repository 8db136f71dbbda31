"""Dense vector index: FAISS (flat, HNSW or IVF) with an exact numpy fallback, filters inside the search.

A filtered search always returns min(k, number of vectors that pass the filter) results: strict filters are
answered exactly on the kept subset; loose ones go through FAISS with an ID selector, and any query that comes
back short is answered exactly instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

KINDS = ("auto", "numpy", "flat", "hnsw", "ivf")


def _faiss() -> Any:
    """The faiss module, untyped: its SWIG stubs miss most of the API used here."""
    import faiss

    return faiss


class DenseIndex:
    """Inner-product search over unit vectors."""

    def __init__(self, kind: str = "auto", auto_threshold: int = 50_000, hnsw_m: int = 32, ef_search: int = 128,
                 ef_construction: int = 80, nlist: int = 0, nprobe: int = 32, exact_below: int = 50_000) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
        self.kind = kind
        self.auto_threshold = auto_threshold
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self.ef_construction = ef_construction
        self.nlist = nlist
        self.nprobe = nprobe
        self.exact_below = exact_below

    def params(self) -> dict[str, Any]:
        """Parameters for the manifest."""
        return {"kind": self.kind, "auto_threshold": self.auto_threshold, "hnsw_m": self.hnsw_m,
                "ef_search": self.ef_search, "ef_construction": self.ef_construction, "nlist": self.nlist,
                "nprobe": self.nprobe, "exact_below": self.exact_below}

    def fit(self, vectors: np.ndarray) -> DenseIndex:
        """Build the index over (n, d) unit vectors."""
        self.vectors_ = np.ascontiguousarray(vectors, dtype=np.float32)
        n = len(self.vectors_)
        kind = self.kind
        if kind == "auto":
            kind = "flat" if n < self.auto_threshold else "hnsw"
        self.kind_ = kind
        self.faiss_ = self._build(kind) if kind != "numpy" else None
        return self

    def _build(self, kind: str) -> Any:
        faiss = _faiss()

        d = self.vectors_.shape[1]
        if kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
        else:
            nlist = self.nlist or max(1, min(4096, int(4 * np.sqrt(len(self.vectors_)))))
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(self.vectors_)
            index.nprobe = self.nprobe
        if len(self.vectors_):
            index.add(self.vectors_)
        return index

    def __len__(self) -> int:
        return len(self.vectors_)

    def search(self, queries: np.ndarray, k: int, mask: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k indices and inner products per query, best first; -1 and -inf pad short rows."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        n = len(self.vectors_)
        kept = n if mask is None else int(mask.sum())
        want = min(k, kept)
        if want == 0 or len(q) == 0:
            return np.full((len(q), k), -1, np.int64), np.full((len(q), k), -np.inf, np.float32)
        if self.faiss_ is None or (mask is not None and kept <= self.exact_below):
            return self._exact(q, k, mask)
        faiss = _faiss()

        params = None
        if mask is not None:
            sel = faiss.IDSelectorBitmap(np.packbits(mask, bitorder="little"))
            if self.kind_ == "hnsw":
                params = faiss.SearchParametersHNSW(sel=sel, efSearch=max(self.ef_search, 2 * k))
            elif self.kind_ == "ivf":
                params = faiss.SearchParametersIVF(sel=sel, nprobe=self.nprobe)
            else:
                params = faiss.SearchParameters(sel=sel)
        elif self.kind_ == "hnsw" and k > self.ef_search:
            params = faiss.SearchParametersHNSW(efSearch=2 * k)
        scores, idx = self.faiss_.search(q, k, params=params)
        short = (idx[:, :want] < 0).any(axis=1)
        if short.any():
            # Approximate graphs can run dry under a filter; answer those queries exactly instead.
            ei, es = self._exact(q[short], k, mask)
            idx[short], scores[short] = ei, es
        scores = np.where(idx >= 0, scores, -np.inf).astype(np.float32)
        return idx.astype(np.int64), scores

    def _exact(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        ids = np.arange(len(self.vectors_)) if mask is None else np.flatnonzero(mask)
        idx = np.full((len(q), k), -1, np.int64)
        val = np.full((len(q), k), -np.inf, np.float32)
        if len(ids) == 0:
            return idx, val
        sub = self.vectors_ if mask is None else self.vectors_[ids]
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

    def score(self, query: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Inner products of one query with the given rows."""
        return self.vectors_[candidates] @ np.asarray(query, dtype=np.float32)

    def save(self, path: Path) -> list[str]:
        """Write vectors (and the FAISS graph for approximate kinds, which is slow to rebuild)."""
        np.save(path / "vectors.npy", self.vectors_, allow_pickle=False)
        files = ["vectors.npy"]
        if self.kind_ in ("hnsw", "ivf"):
            faiss = _faiss()

            faiss.write_index(self.faiss_, str(path / "faiss.index"))
            files.append("faiss.index")
        return files

    @classmethod
    def load(cls, path: Path, params: dict[str, Any], kind_: str) -> DenseIndex:
        """Read what :meth:`save` wrote."""
        self = cls(**params)
        self.vectors_ = np.load(path / "vectors.npy", allow_pickle=False)
        self.kind_ = kind_
        if kind_ in ("hnsw", "ivf"):
            faiss = _faiss()

            self.faiss_ = faiss.read_index(str(path / "faiss.index"))
            if kind_ == "hnsw":
                self.faiss_.hnsw.efSearch = self.ef_search
            else:
                self.faiss_.nprobe = self.nprobe
        else:
            self.faiss_ = self._build(kind_) if kind_ != "numpy" else None
        return self
