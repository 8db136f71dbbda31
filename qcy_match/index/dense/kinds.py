"""The dense index kinds, chosen by name like the encoders: ``numpy`` (exact), ``flat``, ``hnsw``, ``ivf``."""

from __future__ import annotations

from .backend import Backend, Tuning
from .exact import ExactBackend
from .flat import FlatBackend
from .hnsw import HNSWBackend
from .ivf import IVFBackend

BACKENDS: dict[str, type[Backend]] = {"numpy": ExactBackend, "flat": FlatBackend, "hnsw": HNSWBackend,
                                      "ivf": IVFBackend}
KINDS = ("auto", *BACKENDS)  # auto: flat below DenseIndex.auto_threshold vectors, else hnsw


def make_backend(kind: str, tuning: Tuning) -> Backend:
    """An empty search structure of ``kind``, to build (``build``) or read (``load``)."""
    if kind not in BACKENDS:
        raise ValueError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
    return BACKENDS[kind](tuning)
