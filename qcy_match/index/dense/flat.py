"""``flat``: FAISS's brute-force inner-product index; exact, multi-threaded, with filters as ID selectors."""

from __future__ import annotations

from typing import Any

from .backend import Backend
from .storage import Storage, faiss_module


class FlatBackend(Backend):
    """An ``IndexFlatIP`` over float32 vectors; compressed stores are scanned in place, which is the same search."""

    name = "flat"

    def structure(self, store: Storage) -> Any:
        """A flat index over a float32 store (None over float16 codes: the exact scan already reads them)."""
        if store.compressed:
            return None
        index = faiss_module().IndexFlatIP(store.vectors.shape[1])
        for rows in store.chunks():
            self.add(index, rows)
        return index
