"""Dense vector index: FAISS (flat, HNSW or IVF) with an exact numpy fallback, filters inside the search.

Storage: ``float32`` keeps the vectors as given (and FAISS keeps its own float32 copy); ``float16`` keeps one
half-precision copy that FAISS and the exact paths share; ``sq8`` adds an 8-bit graph over the same half-precision
copy (less memory traffic per hop) and rescores what the graph finds from the half-precision vectors. ``auto``
compresses from ``compress_above`` vectors on (see README, "Index kinds and memory").

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
STORAGES = ("auto", "float32", "float16", "sq8")
CHUNK = 65_536  # rows converted to float32 at a time: 128 MiB at 512-d, whatever the corpus size


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
                 ef_construction: int = 80, nlist: int = 0, nprobe: int = 32, exact_below: int = 50_000,
                 storage: str = "auto", compress_above: int = 250_000, refine: int = 2) -> None:
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

    def params(self) -> dict[str, Any]:
        """Parameters for the manifest."""
        return {"kind": self.kind, "auto_threshold": self.auto_threshold, "hnsw_m": self.hnsw_m,
                "ef_search": self.ef_search, "ef_construction": self.ef_construction, "nlist": self.nlist,
                "nprobe": self.nprobe, "exact_below": self.exact_below, "storage": self.storage,
                "compress_above": self.compress_above, "refine": self.refine}

    def fit(self, vectors: np.ndarray) -> DenseIndex:
        """Build the index over (n, d) unit vectors."""
        x = np.asarray(vectors)
        n = len(x)
        kind = self.kind
        if kind == "auto":
            kind = "flat" if n < self.auto_threshold else "hnsw"
        self.kind_ = kind
        storage = self.storage
        if storage == "auto":
            # float16 measured as small and as accurate as sq8 (which keeps the float16 copy too) and faster.
            storage = "float32" if n < self.compress_above else "float16"
        if x.ndim != 2 or not n:
            storage = "float32"  # nothing to compress, and FAISS needs a dimension
        self.storage_ = storage
        self.store_: Any = None
        if storage == "float32":
            self.vectors_ = np.ascontiguousarray(x, dtype=np.float32)
            self.faiss_ = self._build(kind) if kind != "numpy" else None
        else:
            self.faiss_ = self._build_compressed(kind, x)
        self.delta_ = np.zeros((0, self.vectors_.shape[1] if self.vectors_.ndim == 2 else 0), self.vectors_.dtype)
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

    def _build_compressed(self, kind: str, x: np.ndarray) -> Any:
        """Fill ``store_`` (the one float16 copy, exact scans read it) and build the search structure over it.

        Vectors are rounded to float16 by numpy first and FAISS only ever sees exactly representable values, so a
        fresh build and a live delta (rounded by numpy) hold bit-identical vectors.
        """
        faiss = _faiss()

        n, d = x.shape
        fp16 = faiss.ScalarQuantizer.QT_fp16
        store = faiss.IndexScalarQuantizer(d, fp16, faiss.METRIC_INNER_PRODUCT)
        index: Any = None
        if kind == "hnsw" and self.storage_ == "float16":
            # The graph's own storage is the store: one half-precision copy in all.
            index = faiss.IndexHNSW(store, self.hnsw_m)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
            for s in range(0, n, CHUNK):
                index.add(_rounded(x[s:s + CHUNK]))
        else:
            for s in range(0, n, CHUNK):
                store.add_sa_codes(np.ascontiguousarray(x[s:s + CHUNK], dtype=np.float16).view(np.uint8))
        self.store_ = store
        self.vectors_ = _codes_view(store, n, d, owner=(index, store))
        if kind in ("flat", "numpy") or index is not None:
            return index
        qtype = fp16 if self.storage_ == "float16" else faiss.ScalarQuantizer.QT_8bit
        if kind == "hnsw":
            index = faiss.IndexHNSWSQ(d, qtype, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
            # 8-bit ranges from the exact per-dimension min and max (two rows train the min-max quantizer).
            lo = np.min([self._rows(s, s + CHUNK).min(axis=0) for s in range(0, n, CHUNK)], axis=0)
            hi = np.max([self._rows(s, s + CHUNK).max(axis=0) for s in range(0, n, CHUNK)], axis=0)
            index.train(np.vstack([lo, hi]))
        else:
            nlist = max(1, min(self.nlist or min(4096, int(4 * np.sqrt(n))), n))
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, qtype, faiss.METRIC_INNER_PRODUCT)
            sample = np.sort(np.random.default_rng(0).choice(n, min(n, max(100_000, 40 * nlist)), replace=False))
            index.train(_rounded(self.vectors_[sample]))
            index.nprobe = self.nprobe
        for s in range(0, n, CHUNK):
            index.add(self._rows(s, s + CHUNK))
        return index

    def _rows(self, start: int, stop: int) -> np.ndarray:
        return np.ascontiguousarray(self.vectors_[start:stop], dtype=np.float32)

    def __len__(self) -> int:
        """Positions, deleted ones included."""
        return len(self.vectors_) + len(self.delta_)

    def updated(self, add: np.ndarray | None = None, delete: np.ndarray | list[int] | None = None) -> DenseIndex:
        """A new index with ``delete`` positions masked out and ``add`` vectors appended to the exact delta."""
        new = copy.copy(self)
        alive = np.ones(len(self), bool) if self.alive_ is None else self.alive_.copy()
        alive[np.asarray(delete if delete is not None else [], dtype=np.int64)] = False
        if add is not None and len(add):
            added = np.asarray(add, np.float32).astype(self.delta_.dtype)
            new.delta_ = np.ascontiguousarray(np.vstack([self.delta_, added]))
            alive = np.concatenate([alive, np.ones(len(add), bool)])
        new.alive_ = None if alive.all() else alive
        return new

    def _live_stored(self) -> np.ndarray:
        all_ = np.vstack([self.vectors_, self.delta_]) if len(self.delta_) else self.vectors_
        return all_ if self.alive_ is None else all_[self.alive_]

    def live_vectors(self) -> np.ndarray:
        """The vectors of live positions, in position order, as float32 (a copy when storage is compressed)."""
        return np.asarray(self._live_stored(), dtype=np.float32)

    def compacted(self) -> DenseIndex:
        """A new index built over the live vectors only: no delta, no deletes (renumbers positions)."""
        if not len(self.delta_) and self.alive_ is None:
            return self
        return DenseIndex(**self.params()).fit(self._live_stored())

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
        return _best(idx, val, k)

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

        # Graphs over 8-bit (or IVF residual) codes rank approximately: fetch more and rescore from float16.
        rescore = self.storage_ != "float32" and not (self.kind_ == "hnsw" and self.storage_ == "float16")
        fetch = min(n, k * self.refine) if rescore else k
        params = None
        if mask is not None:
            sel = faiss.IDSelectorBitmap(np.packbits(mask, bitorder="little"))
            if self.kind_ == "hnsw":
                params = faiss.SearchParametersHNSW(sel=sel, efSearch=max(self.ef_search, 2 * fetch))
            elif self.kind_ == "ivf":
                params = faiss.SearchParametersIVF(sel=sel, nprobe=self.nprobe)
            else:
                params = faiss.SearchParameters(sel=sel)
        elif self.kind_ == "hnsw" and fetch > self.ef_search:
            params = faiss.SearchParametersHNSW(efSearch=2 * fetch)
        scores, idx = self.faiss_.search(q, fetch, params=params)
        if rescore:
            rows = np.ascontiguousarray(self.vectors_[np.maximum(idx, 0).ravel()], dtype=np.float32)
            scores = np.einsum("qd,qkd->qk", q, rows.reshape(len(q), fetch, -1))
            idx, scores = _best(idx.astype(np.int64), np.where(idx >= 0, scores, -np.inf), k)
        short = (idx[:, :want] < 0).any(axis=1)
        if short.any():
            # Approximate graphs can run dry under a filter; answer those queries exactly instead.
            ei, es = self._exact(q[short], k, mask)
            idx[short], scores[short] = ei, es
        scores = np.where(idx >= 0, scores, -np.inf).astype(np.float32)
        return idx.astype(np.int64), scores

    def _exact(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if self.store_ is None:
            return _exact_over(self.vectors_, q, k, mask)
        # FAISS scans the float16 codes in place: no float32 copy of the kept rows, however many.
        faiss = _faiss()

        kept = len(self.vectors_) if mask is None else int(mask.sum())
        kk = min(k, kept)
        params = None if mask is None else faiss.SearchParameters(
            sel=faiss.IDSelectorBitmap(np.packbits(mask, bitorder="little")))
        scores, idx = self.store_.search(q, kk, params=params)
        out_i = np.full((len(q), k), -1, np.int64)
        out_s = np.full((len(q), k), -np.inf, np.float32)
        out_i[:, :kk], out_s[:, :kk] = idx, scores
        return _best(out_i, out_s, k)

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
        """Write vectors (and the FAISS graph for approximate kinds, which is slow to rebuild); compacted only.

        A float16 HNSW graph holds the vectors itself, so it is written alone.
        """
        if len(self.delta_) or self.alive_ is not None:
            raise ValueError("save a compacted DenseIndex (the engine compacts before saving)")
        files = []
        if not (self.kind_ == "hnsw" and self.storage_ == "float16"):
            np.save(path / "vectors.npy", self.vectors_, allow_pickle=False)
            files.append("vectors.npy")
        if self.kind_ in ("hnsw", "ivf") and self.faiss_ is not None:
            faiss = _faiss()

            faiss.write_index(self.faiss_, str(path / "faiss.index"))
            files.append("faiss.index")
        return files

    @classmethod
    def load(cls, path: Path, params: dict[str, Any], kind_: str) -> DenseIndex:
        """Read what :meth:`save` wrote, refusing files that disagree with each other or with ``params``."""
        self = cls(**params)
        self.kind_ = kind_
        self.store_ = None
        index = _read_faiss(path / "faiss.index") if kind_ in ("hnsw", "ivf") else None
        if (path / "vectors.npy").is_file():
            self.vectors_ = np.load(path / "vectors.npy", allow_pickle=False)
            if self.vectors_.ndim != 2 or self.vectors_.dtype not in (np.float32, np.float16):
                raise ValueError(f"vectors.npy holds {self.vectors_.dtype} of shape {self.vectors_.shape}, "
                                 "expected a float32 or float16 matrix")
            if self.vectors_.dtype == np.float32:
                self.storage_ = "float32"
            else:
                if index is None:  # exact kinds scan the float16 copy whichever compressed storage was asked
                    self.storage_ = self.storage if self.storage in ("float16", "sq8") else "float16"
                else:
                    self.storage_ = "float16" if _qtype(index) == "float16" else "sq8"
                faiss = _faiss()

                n, d = self.vectors_.shape
                store = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
                for s in range(0, n, CHUNK):
                    store.add_sa_codes(np.ascontiguousarray(self.vectors_[s:s + CHUNK]).view(np.uint8))
                self.store_ = store
                self.vectors_ = _codes_view(store, n, d, owner=store)
        elif kind_ == "hnsw" and index is not None and _qtype(index) == "float16":
            faiss = _faiss()

            self.storage_ = "float16"
            self.store_ = faiss.downcast_index(index.storage)
            self.vectors_ = _codes_view(self.store_, index.ntotal, index.d, owner=(index, self.store_))
        else:
            raise ValueError("vectors.npy is missing")
        if self.storage not in ("auto", self.storage_):
            raise ValueError(f"the files hold {self.storage_} vectors, the parameters say {self.storage}")
        self.delta_ = np.zeros((0, self.vectors_.shape[1]), self.vectors_.dtype)
        self.alive_ = None
        if index is not None:
            if index.ntotal != len(self.vectors_) or index.d != self.vectors_.shape[1]:
                raise ValueError("faiss.index disagrees with vectors.npy")
            if (_qtype(index) == "float32") != (self.storage_ == "float32"):
                raise ValueError(f"faiss.index is {_qtype(index)}, vectors.npy {self.vectors_.dtype}")
            if kind_ == "hnsw":
                index.hnsw.efSearch = self.ef_search
            else:
                index.nprobe = self.nprobe
            self.faiss_ = index
        elif self.storage_ == "float32":
            self.faiss_ = self._build(kind_) if kind_ != "numpy" else None
        else:
            self.faiss_ = None
        return self


def _read_faiss(file: Path) -> Any:
    faiss = _faiss()

    try:
        return faiss.read_index(str(file))
    except RuntimeError as exc:  # FAISS reports unreadable files as RuntimeError
        raise ValueError(f"{file.name}: {str(exc).splitlines()[0] if str(exc) else 'unreadable'}") from exc


def _qtype(index: Any) -> str:
    """What a FAISS index stores its vectors as: float32, float16, sq8 (or another scalar quantizer's name)."""
    faiss = _faiss()

    inner = faiss.downcast_index(index.storage) if hasattr(index, "storage") else index
    sq = getattr(inner, "sq", None)
    if sq is None:
        return "float32"
    return {faiss.ScalarQuantizer.QT_fp16: "float16", faiss.ScalarQuantizer.QT_8bit: "sq8"}.get(sq.qtype, "other")


class _Codes:
    """Array interface over FAISS-owned memory that keeps its owner alive as long as any numpy view of it."""

    def __init__(self, address: int, n: int, d: int, owner: Any) -> None:
        self._owner = owner
        self.__array_interface__ = {"shape": (n, d), "typestr": "<f2", "data": (address, True), "version": 3}


def _codes_view(store: Any, n: int, d: int, owner: Any) -> np.ndarray:
    """The float16 vectors inside a FAISS float16 scalar-quantizer index, read-only and without a copy."""
    if store.ntotal != n or store.sa_code_size() != 2 * d:
        raise ValueError("float16 store disagrees with its vector count or dimension")
    if not n:
        return np.zeros((0, d), np.float16)
    raw = _faiss().rev_swig_ptr(store.codes.data(), n * d * 2)
    return np.asarray(_Codes(raw.ctypes.data, n, d, owner))


def _rounded(x: np.ndarray) -> np.ndarray:
    """float32 rows holding exactly the float16 values numpy rounds them to."""
    return np.asarray(x, dtype=np.float16).astype(np.float32)


def _best(idx: np.ndarray, val: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, best score first, lower position on ties, padding last: the order one exact search would give."""
    order = np.lexsort((np.where(idx >= 0, idx, np.iinfo(np.int64).max), -val), axis=1)[:, :k]
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(val, order, axis=1)


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
