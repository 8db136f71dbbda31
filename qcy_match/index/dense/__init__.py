"""Dense vector index: FAISS (flat, HNSW or IVF) or exact numpy search, filters inside the search.

Laid out like :mod:`qcy_match.encoders`: a small interface, one module per kind, chosen by name.

* :mod:`.base` — :class:`DenseIndex`, what every kind shares: live updates (a delta and a deletion mask), filtered
  search with its exact fallback, scores, the save/load contract;
* :mod:`.backend` — :class:`Backend`, the interface a kind implements (build, search, save, load);
* :mod:`.exact` (``numpy``), :mod:`.flat`, :mod:`.hnsw`, :mod:`.ivf` — the kinds, registered in :mod:`.kinds`;
* :mod:`.storage` — :class:`Storage`, how the vectors are kept (``float32``, ``float16``, ``sq8``), a parameter of
  every kind.
"""

from __future__ import annotations

from .backend import Backend, Tuning
from .base import DenseIndex
from .kinds import BACKENDS, KINDS, make_backend
from .storage import STORAGES, Storage

__all__ = ["BACKENDS", "KINDS", "STORAGES", "Backend", "DenseIndex", "Storage", "Tuning", "make_backend"]
