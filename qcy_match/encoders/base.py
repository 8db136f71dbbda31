"""The encoder interface: texts (and their tokens) in, L2-normalised float32 vectors out."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np


class Encoder(Protocol):
    """What every dense encoder provides. ``fit`` may do nothing for pretrained models."""

    name: str

    @property
    def dim(self) -> int:
        """Vector width."""
        ...

    def fit(self, texts: list[str], tokens: list[list[str]]) -> Encoder:
        """Learn from the indexed corpus (corpus-fitted encoders) or load weights (pretrained ones)."""
        ...

    def encode(self, texts: list[str], tokens: list[list[str]]) -> np.ndarray:
        """Return an (n, dim) float32 array of unit vectors."""
        ...

    def params(self) -> dict[str, Any]:
        """JSON-serialisable parameters for the manifest."""
        ...

    def save(self, path: Path) -> list[str]:
        """Write learned state into ``path``; return the file names written."""
        ...


class MissingExtraError(ImportError):
    """An optional feature whose extra is not installed."""


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Scale rows to unit length (zero rows stay zero) as contiguous float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)
