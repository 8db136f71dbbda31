"""Dense vector index: FAISS (flat, HNSW or IVF) with an exact numpy fallback, filters inside the search."""

from __future__ import annotations

from .base import DenseIndex

__all__ = ["DenseIndex"]
