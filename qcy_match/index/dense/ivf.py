"""``ivf``: FAISS inverted lists (k-means cells; a query scans the ``nprobe`` nearest cells)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .backend import Backend, nlist_for
from .storage import Storage, faiss_module, rounded, selector


class IVFBackend(Backend):
    """``IndexIVFFlat`` over float32 vectors, ``IndexIVFScalarQuantizer`` (float16 or 8-bit codes) over compressed
    ones; compressed hits are rescored from the float16 copy.
    """

    name = "ivf"
    saves_structure = True

    def structure(self, store: Storage) -> Any:
        """Train the cells and fill them with the store's vectors."""
        faiss = faiss_module()
        n, d = len(store), store.vectors.shape[1]
        if not n:
            return faiss.IndexFlatIP(d)  # nothing to train the cells on
        nlist = nlist_for(n, self.tuning.nlist)
        quantizer = faiss.IndexFlatIP(d)
        if not store.compressed:
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(store.vectors)
            self.tune(index)
            for rows in store.chunks():
                self.add(index, rows)
            return index
        index = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, store.qtype, faiss.METRIC_INNER_PRODUCT)
        sample = np.sort(np.random.default_rng(0).choice(n, min(n, max(100_000, 40 * nlist)), replace=False))
        index.train(rounded(store.vectors[sample]))
        self.tune(index)
        for rows in store.chunks():
            self.add(index, rows)
        return index

    def tune(self, index: Any) -> None:
        """Cells scanned per query."""
        if hasattr(index, "nprobe"):  # an empty index is a flat one
            index.nprobe = self.tuning.nprobe

    def search_params(self, mask: np.ndarray | None, fetch: int) -> Any:
        """The ID selector, with the index's own ``nprobe`` (FAISS's search parameters would reset it)."""
        if mask is None:
            return None
        return faiss_module().SearchParametersIVF(sel=selector(mask), nprobe=self.tuning.nprobe)
