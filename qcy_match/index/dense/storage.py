"""How a dense index keeps its main vectors: ``float32`` as given, or one half-precision copy (``float16``, ``sq8``).

``float32`` keeps a float32 matrix (and a FAISS structure built over it keeps its own copy). ``float16`` and ``sq8``
keep one float16 copy inside a FAISS scalar-quantizer index: exact scans run in FAISS over those codes in place, and
numpy reads the same memory through a read-only view. They differ only in what a search structure encodes for
itself (:attr:`Storage.qtype`): ``sq8`` graphs hold 8-bit codes (less memory traffic per hop) and rescore what they
find from the float16 copy. Vectors are rounded to float16 by numpy before FAISS sees them, so a fresh build and a
live delta (rounded by numpy) hold bit-identical vectors.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ...persistence import LAYOUT
from ..topk import best, exact_top_k

STORAGES = ("auto", "float32", "float16", "sq8")
CHUNK = 65_536  # rows converted to float32 at a time: 128 MiB at 512-d, whatever the corpus size


def faiss_module() -> Any:
    """The faiss module, untyped: its SWIG stubs miss most of the API used here."""
    import faiss

    return faiss


def selector(mask: np.ndarray) -> Any:
    """A FAISS ID selector keeping the positions ``mask`` marks."""
    return faiss_module().IDSelectorBitmap(np.packbits(mask, bitorder="little"))


def rounded(x: np.ndarray) -> np.ndarray:
    """float32 rows holding exactly the float16 values numpy rounds them to."""
    return np.asarray(x, dtype=np.float16).astype(np.float32)


class Storage:
    """The main vectors of a dense index, the exact scan over them, and how they are written.

    ``name`` is ``float32``, ``float16`` or ``sq8``; ``vectors`` the (n, d) matrix (float32, or a read-only float16
    view of ``codes``); ``codes`` the FAISS float16 scalar quantizer holding them, None for ``float32``.
    """

    def __init__(self, name: str, vectors: np.ndarray, codes: Any = None) -> None:
        self.name = name
        self.vectors = vectors
        self.codes = codes

    @classmethod
    def of(cls, name: str, x: np.ndarray) -> Storage:
        """Keep the (n, d) vectors ``x`` as storage ``name``."""
        if name == "float32":
            return cls(name, np.ascontiguousarray(x, dtype=np.float32))
        n, d = x.shape
        codes = cls.empty_codes(d)
        for s in range(0, n, CHUNK):
            codes.add_sa_codes(np.ascontiguousarray(x[s:s + CHUNK], dtype=np.float16).view(np.uint8))
        return cls.over(name, codes, n, d, owner=codes)

    @classmethod
    def over(cls, name: str, codes: Any, n: int, d: int, owner: Any) -> Storage:
        """Storage ``name`` over the float16 vectors already in ``codes``; ``owner`` keeps their memory alive."""
        return cls(name, _codes_view(codes, n, d, owner), codes)

    @staticmethod
    def empty_codes(d: int) -> Any:
        """An empty FAISS float16 scalar quantizer of width ``d`` (inner-product metric)."""
        faiss = faiss_module()
        return faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)

    @property
    def compressed(self) -> bool:
        """Whether the vectors are kept in half precision."""
        return self.codes is not None

    @property
    def qtype(self) -> Any:
        """The FAISS scalar-quantizer type a compressed structure encodes its own copy with."""
        sq = faiss_module().ScalarQuantizer
        return sq.QT_fp16 if self.name == "float16" else sq.QT_8bit

    def __len__(self) -> int:
        return len(self.vectors)

    def like(self, x: np.ndarray) -> np.ndarray:
        """Rows as this storage holds them (float32, or rounded to float16 as a fresh build rounds them)."""
        return np.asarray(x, np.float32).astype(self.vectors.dtype)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as contiguous float32."""
        return np.ascontiguousarray(self.vectors[start:stop], dtype=np.float32)

    def chunks(self) -> Iterator[np.ndarray]:
        """All rows as float32, :data:`CHUNK` at a time (a compressed store is never copied whole)."""
        for s in range(0, len(self), CHUNK):
            yield self.rows(s, s + CHUNK)

    def exact(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k positions and inner products over the kept rows; -1 and -inf pad short rows."""
        if self.codes is None:
            return exact_top_k(self.vectors, q, k, mask)
        # FAISS scans the float16 codes in place: no float32 copy of the kept rows, however many.
        kept = len(self) if mask is None else int(mask.sum())
        kk = min(k, kept)
        params = None if mask is None else faiss_module().SearchParameters(sel=selector(mask))
        scores, idx = self.codes.search(q, kk, params=params)
        out_i = np.full((len(q), k), -1, np.int64)
        out_s = np.full((len(q), k), -np.inf, np.float32)
        out_i[:, :kk], out_s[:, :kk] = idx, scores
        return best(out_i, out_s, k)

    def save(self, path: Path) -> list[str]:
        """Write the vectors (float32, or the float16 copy) as :attr:`Layout.vectors`."""
        np.save(path / LAYOUT.vectors, self.vectors, allow_pickle=False)
        return [LAYOUT.vectors]

    @classmethod
    def read(cls, path: Path, compressed: str, mmap: bool = True) -> Storage | None:
        """What :meth:`save` wrote (None when there is no such file); float16 vectors load as ``compressed``."""
        file = path / LAYOUT.vectors
        if not file.is_file():
            return None
        # Memory-mapped (read-only): float32 rows are read where a search touches them; float16 ones are copied
        # into the FAISS codes below.
        vectors = np.load(file, mmap_mode="r" if mmap else None, allow_pickle=False)
        if vectors.ndim != 2 or vectors.dtype not in (np.float32, np.float16):
            raise ValueError(f"{LAYOUT.vectors} holds {vectors.dtype} of shape {vectors.shape}, "
                             "expected a float32 or float16 matrix")
        return cls("float32", vectors) if vectors.dtype == np.float32 else cls.of(compressed, vectors)


class _Codes:
    """Array interface over FAISS-owned memory that keeps its owner alive as long as any numpy view of it."""

    def __init__(self, address: int, n: int, d: int, owner: Any) -> None:
        self._owner = owner
        self.__array_interface__ = {"shape": (n, d), "typestr": "<f2", "data": (address, True), "version": 3}


def _codes_view(codes: Any, n: int, d: int, owner: Any) -> np.ndarray:
    """The float16 vectors inside a FAISS float16 scalar-quantizer index, read-only and without a copy."""
    if codes.ntotal != n or codes.sa_code_size() != 2 * d:
        raise ValueError("float16 store disagrees with its vector count or dimension")
    if not n:
        return np.zeros((0, d), np.float16)
    raw = faiss_module().rev_swig_ptr(codes.codes.data(), n * d * 2)
    return np.asarray(_Codes(raw.ctypes.data, n, d, owner))
