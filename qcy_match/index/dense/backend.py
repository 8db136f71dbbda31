"""The interface every dense index kind implements: a search structure over a :class:`Storage`.

A kind builds its structure over the stored vectors (or none: queries are then answered by exact scans), searches
it with an optional filter, and writes and reads it. The storage is a parameter of each step, not a subclass: a kind
asks the store for its vectors, its rows as float32 and the quantizer type of a compressed structure.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ...persistence import LAYOUT
from ..topk import best
from .storage import Storage, faiss_module, selector


@dataclasses.dataclass(frozen=True)
class Tuning:
    """The parameters of :class:`~qcy_match.index.dense.DenseIndex` that search structures read.

    0 means "chosen from the number of vectors" (:meth:`for_n`), which is the default for every one of them.
    """

    hnsw_m: int
    ef_search: int
    ef_construction: int
    nlist: int
    nprobe: int
    refine: int

    def for_n(self, n: int) -> Tuning:
        """These parameters with every 0 replaced by its value for ``n`` vectors (README, "Index parameters").

        A graph's recall at a fixed search breadth falls as it grows (more hops, more near-ties among neighbours),
        so the breadth grows with n: measured on clustered 512-d vectors (M 32), recall@10 of 0.95 needs efSearch
        ≈ 80 at 30k and ≈ 105 at 100k, a factor ≈ 1.7 per decade, so ≈ 175 at 1M. The rule doubles per decade:
        128 at 100k (0.968 measured), 256 at 1M, a margin for embeddings harder than the benchmark's (1M LSA
        vectors reached 0.79 at efSearch 128). Links per node (M) are 32 below 1M and grow by 8 per decade from
        there; the build breadth is half the search breadth, at least 80; the IVF probe count is 2·√nlist (at
        least 32), so the share of cells scanned shrinks slowly as the cells multiply.
        """
        decades = float(np.log10(max(n, 1000) / 1000))  # 0 at 1k, 2 at 100k, 3 at 1M
        m = self.hnsw_m or int(np.clip(16 + 8 * int(decades), 32, 48))
        ef = int(np.clip(round(16 * 2 ** (decades - 2)) * 8, 64, 512))  # 128 at 100k, doubling per decade
        return dataclasses.replace(
            self, hnsw_m=m,
            ef_search=self.ef_search or ef,
            ef_construction=self.ef_construction or max(80, ef // 2),
            nlist=self.nlist or nlist_for(n, 0),
            nprobe=self.nprobe or int(np.clip(round(2 * np.sqrt(nlist_for(n, 0))), 32, 256)))


class Backend:
    """A search structure over the main vectors of a dense index; one subclass per kind, chosen by name.

    This base has no structure (``faiss_`` stays None), which makes every search an exact scan of the store: the
    ``numpy`` kind is this base unchanged.
    """

    name: ClassVar[str]
    saves_structure: ClassVar[bool] = False  # written as Layout.faiss (slow to rebuild), else rebuilt on load

    def __init__(self, tuning: Tuning) -> None:
        self.tuning = tuning
        self.faiss_: Any = None
        self.progress: Any = None  # a tqdm bar counting the vectors added while building, or None

    def add(self, index: Any, rows: np.ndarray) -> None:
        """Add ``rows`` to a structure being built, counting them on the progress bar."""
        index.add(rows)
        if self.progress is not None:
            self.progress.update(len(rows))

    # ---- building -----------------------------------------------------------------------------------------------
    def build(self, x: np.ndarray, storage: str) -> Storage:
        """Keep the vectors ``x`` as ``storage`` and build the structure over them; returns the store."""
        store = Storage.of(storage, x)
        self.faiss_ = self.structure(store)
        return store

    def structure(self, store: Storage) -> Any:
        """A FAISS index over the store's vectors, or None to answer every query with an exact scan."""
        return None

    def tune(self, index: Any) -> None:
        """Set the search-time parameters on a built or loaded structure."""

    def holds_vectors(self, store: Storage) -> bool:
        """Whether the structure itself holds the store's vectors (so they are not written twice)."""
        return False

    # ---- searching ----------------------------------------------------------------------------------------------
    def search_params(self, mask: np.ndarray | None, fetch: int) -> Any:
        """FAISS search parameters: an ID selector for ``mask``, and what the kind needs to fetch ``fetch`` hits."""
        return None if mask is None else faiss_module().SearchParameters(sel=selector(mask))

    def search(self, store: Storage, q: np.ndarray, k: int, mask: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Approximate top-k through the structure; rows may come back short under a filter (-1 pads them)."""
        # A structure over its own compressed codes (8-bit, or IVF residuals) ranks approximately: fetch more
        # candidates and rescore them from the float16 copy.
        rescore = store.compressed and not self.holds_vectors(store)
        fetch = min(len(store), k * self.tuning.refine) if rescore else k
        scores, idx = self.faiss_.search(q, fetch, params=self.search_params(mask, fetch))
        if rescore:
            rows = np.ascontiguousarray(store.vectors[np.maximum(idx, 0).ravel()], dtype=np.float32)
            scores = np.einsum("qd,qkd->qk", q, rows.reshape(len(q), fetch, -1))
            idx, scores = best(idx.astype(np.int64), np.where(idx >= 0, scores, -np.inf), k)
        return idx, scores

    # ---- persistence --------------------------------------------------------------------------------------------
    def save(self, path: Path, store: Storage) -> list[str]:
        """Write the store's vectors (unless the structure holds them) and the structure if it is saved."""
        files = [] if self.holds_vectors(store) else store.save(path)
        if self.saves_structure and self.faiss_ is not None:
            faiss_module().write_index(self.faiss_, str(path / LAYOUT.faiss))
            files.append(LAYOUT.faiss)
        return files

    def load(self, path: Path, storage: str, mmap: bool = True) -> Storage:
        """Read what :meth:`save` wrote, refusing files that disagree with each other; returns the store.

        ``storage`` is the storage parameter (possibly ``auto``): it names float16 files when no structure says
        which compressed storage they were built for. ``mmap``: map the files instead of reading them into memory.
        """
        index = _read(path / LAYOUT.faiss, mmap) if self.saves_structure else None
        store = self.read_store(path, storage, index, mmap)
        self.tuning = self.tuning.for_n(len(store))
        if index is None:
            self.faiss_ = self.structure(store)
            return store
        if index.ntotal != len(store) or index.d != store.vectors.shape[1]:
            raise ValueError(f"{LAYOUT.faiss} disagrees with {LAYOUT.vectors}")
        if (qtype(index) == "float32") != (store.name == "float32"):
            raise ValueError(f"{LAYOUT.faiss} is {qtype(index)}, {LAYOUT.vectors} {store.vectors.dtype}")
        self.tune(index)
        self.faiss_ = index
        return store

    def read_store(self, path: Path, storage: str, index: Any, mmap: bool = True) -> Storage:
        """The stored vectors; a loaded structure tells which compressed storage float16 files belong to."""
        if index is None:  # exact scans read the float16 copy whichever compressed storage was asked
            compressed = storage if storage in ("float16", "sq8") else "float16"
        else:
            compressed = "float16" if qtype(index) == "float16" else "sq8"
        store = Storage.read(path, compressed, mmap)
        if store is None:
            raise ValueError(f"{LAYOUT.vectors} is missing")
        return store


def nlist_for(n: int, nlist: int) -> int:
    """Inverted lists for ``n`` vectors: ``nlist``, or about 4·√n up to 4096; never more than there are vectors.

    k-means needs at least one point per list (a live index can shrink to a handful of records).
    """
    return max(1, min(nlist or min(4096, int(4 * np.sqrt(n))), n))


def qtype(index: Any) -> str:
    """What a FAISS index stores its vectors as: float32, float16, sq8 (or another scalar quantizer's name)."""
    faiss = faiss_module()
    inner = faiss.downcast_index(index.storage) if hasattr(index, "storage") else index
    sq = getattr(inner, "sq", None)
    if sq is None:
        return "float32"
    return {faiss.ScalarQuantizer.QT_fp16: "float16", faiss.ScalarQuantizer.QT_8bit: "sq8"}.get(sq.qtype, "other")


def _read(file: Path, mmap: bool) -> Any:
    """The FAISS structure in ``file``, its vectors and graph links memory-mapped, not copied.

    Opening then costs no reading and the pages are shared between processes serving one index and reclaimable by
    the kernel. Never written through: live updates go to the delta, and a compaction builds a new structure.
    """
    faiss = faiss_module()
    try:
        return faiss.read_index(str(file), faiss.IO_FLAG_MMAP_IFC if mmap else 0)
    except RuntimeError as exc:  # FAISS reports unreadable files as RuntimeError
        raise ValueError(f"{file.name}: {str(exc).splitlines()[0] if str(exc) else 'unreadable'}") from exc
