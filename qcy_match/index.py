"""Dense vector index: FAISS (flat, HNSW or IVF) with an exact numpy fallback, filters inside the search.

A filtered search always returns min(k, number of vectors that pass the filter) results: strict filters are
answered exactly on the kept subset; loose ones go through FAISS with an ID selector, and any query that comes
back short is answered exactly instead.
"""

from __future__ import annotations

import copy
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
    """Inner-product search over unit vectors.

    Live updates: vectors added after :meth:`fit` form a *delta* searched exactly beside the main structure, and
    deletes are a mask applied inside every search; :meth:`updated` returns a new instance (readers holding the old
    one are undisturbed) and :meth:`compacted` rebuilds one main structure over the live vectors, as a fresh build
    over them would. Positions: main vectors first, then the delta's, in the order added.
    """

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
        self.delta_ = np.zeros((0, self.vectors_.shape[1] if self.vectors_.ndim == 2 else 0), np.float32)
        self.alive_: np.ndarray | None = None
        return self

    def _build(self, kind: str) -> Any:
        faiss = _faiss()

        d = self.vectors_.shape[1]
        if kind == "flat" or (kind == "ivf" and not len(self.vectors_)):
            index = faiss.IndexFlatIP(d)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
        else:
            # k-means needs at least one point per list (a live index can shrink to a handful of records).
            nlist = max(1, min(self.nlist or min(4096, int(4 * np.sqrt(len(self.vectors_)))), len(self.vectors_)))
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(self.vectors_)
            index.nprobe = self.nprobe
        if len(self.vectors_):
            index.add(self.vectors_)
        return index

    def __len__(self) -> int:
        """Positions, deleted ones included."""
        return len(self.vectors_) + len(self.delta_)

    def updated(self, add: np.ndarray | None = None, delete: np.ndarray | list[int] | None = None) -> DenseIndex:
        """A new index with ``delete`` positions masked out and ``add`` vectors appended to the exact delta."""
        new = copy.copy(self)
        alive = np.ones(len(self), bool) if self.alive_ is None else self.alive_.copy()
        alive[np.asarray(delete if delete is not None else [], dtype=np.int64)] = False
        if add is not None and len(add):
            new.delta_ = np.ascontiguousarray(np.vstack([self.delta_, np.asarray(add, np.float32)]))
            alive = np.concatenate([alive, np.ones(len(add), bool)])
        new.alive_ = None if alive.all() else alive
        return new

    def live_vectors(self) -> np.ndarray:
        """The vectors of live positions, in position order."""
        all_ = np.vstack([self.vectors_, self.delta_]) if len(self.delta_) else self.vectors_
        return all_ if self.alive_ is None else all_[self.alive_]

    def compacted(self) -> DenseIndex:
        """A new index built over the live vectors only: no delta, no deletes (renumbers positions)."""
        if not len(self.delta_) and self.alive_ is None:
            return self
        return DenseIndex(**self.params()).fit(self.live_vectors())

    def search(self, queries: np.ndarray, k: int, mask: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k positions and inner products per query, best first; -1 and -inf pad short rows.

        ``mask`` (over all positions) keeps the positions it marks; deleted positions are never returned.
        """
        if self.alive_ is not None:
            mask = self.alive_ if mask is None else mask & self.alive_
        n_main = len(self.vectors_)
        if not len(self.delta_):
            return self._search_main(queries, k, mask)
        q = np.ascontiguousarray(queries, dtype=np.float32)
        i1, s1 = self._search_main(q, k, None if mask is None else mask[:n_main])
        dmask = None if mask is None else mask[n_main:]
        i2, s2 = _exact_over(self.delta_, q, k, dmask)
        i2 = np.where(i2 >= 0, i2 + n_main, -1)
        idx, val = np.hstack([i1, i2]), np.hstack([s1, s2])
        # Best score first, lower position on ties, padding last: the order one exact search would give.
        order = np.lexsort((np.where(idx >= 0, idx, np.iinfo(np.int64).max), -val), axis=1)[:, :k]
        return np.take_along_axis(idx, order, axis=1), np.take_along_axis(val, order, axis=1)

    def _search_main(self, queries: np.ndarray, k: int, mask: np.ndarray | None = None
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
        return _exact_over(self.vectors_, q, k, mask)

    def score(self, query: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Inner products of one query with the given positions.

        Summed in float64, so a score does not depend on which other rows share the BLAS call (min-max fusion
        would magnify last-bit differences between a live-updated index and a fresh build).
        """
        n_main = len(self.vectors_)
        cands = np.asarray(candidates, dtype=np.int64)
        q = np.asarray(query, dtype=np.float64)
        main = cands < n_main
        out = np.empty(len(cands), np.float32)
        out[main] = self.vectors_[cands[main]].astype(np.float64) @ q
        if not main.all():
            out[~main] = self.delta_[cands[~main] - n_main].astype(np.float64) @ q
        return out

    def save(self, path: Path) -> list[str]:
        """Write vectors (and the FAISS graph for approximate kinds, which is slow to rebuild); compacted only."""
        if len(self.delta_) or self.alive_ is not None:
            raise ValueError("save a compacted DenseIndex (the engine compacts before saving)")
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
        if self.vectors_.ndim != 2 or self.vectors_.dtype != np.float32:
            raise ValueError(f"vectors.npy holds {self.vectors_.dtype} of shape {self.vectors_.shape}, "
                             "expected a float32 matrix")
        self.kind_ = kind_
        self.delta_ = np.zeros((0, self.vectors_.shape[1]), np.float32)
        self.alive_ = None
        if kind_ in ("hnsw", "ivf"):
            faiss = _faiss()

            self.faiss_ = faiss.read_index(str(path / "faiss.index"))
            if self.faiss_.ntotal != len(self.vectors_) or self.faiss_.d != self.vectors_.shape[1]:
                raise ValueError("faiss.index disagrees with vectors.npy")
            if kind_ == "hnsw":
                self.faiss_.hnsw.efSearch = self.ef_search
            else:
                self.faiss_.nprobe = self.nprobe
        else:
            self.faiss_ = self._build(kind_) if kind_ != "numpy" else None
        return self


def _exact_over(vectors: np.ndarray, q: np.ndarray, k: int, mask: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k over the rows of ``vectors`` that ``mask`` keeps."""
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
