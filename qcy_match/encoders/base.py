"""The encoder interface: texts (and their tokens) in, L2-normalised float32 vectors out."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, Self

import numpy as np


class Encoder(Protocol):
    """What every dense encoder provides. ``fit`` may do nothing for pretrained models."""

    name: str
    # Whether encode() and fit() read the tokens (a corpus-fitted encoder does, a sentence model reads the text):
    # where they do not, callers pass empty token lists and skip cutting the texts a second time.
    reads_tokens: bool

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


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Scale rows to unit length (zero rows stay zero) as contiguous float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


class PretrainedEncoder:
    """What the encoders whose weights live outside the index share (an installed package, or the user's own model
    directory): the model is opened once, lazily, under a lock; there is nothing to learn or to write; an index
    rebuilds the encoder from its parameters.
    """

    reads_tokens = False

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        """Vector width."""
        raise NotImplementedError

    def _open(self) -> Any:
        """Build the model (each encoder says how)."""
        raise NotImplementedError

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._open()
            return self._model

    def fit(self, texts: list[str], tokens: list[list[str]]) -> Self:
        """Nothing to learn; opens the model."""
        self._load()
        return self

    def save(self, path: Path) -> list[str]:
        """The weights stay where they are installed; nothing to write."""
        return []

    @classmethod
    def load(cls, path: Path, params: dict[str, Any]) -> Self:
        """Rebuild from parameters."""
        return cls(**params)

    def _encode_in_chunks(self, texts: list[str], run: Callable[[Any, list[str]], Any], chunk: int,
                          max_chars: int) -> np.ndarray:
        """Unit vectors of texts cut to ``max_chars``, ``run(model, texts)`` a chunk at a time. The packaged engines
        are not documented as thread-safe, so one forward pass runs at a time.
        """
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        cut = [t[:max_chars] or " " for t in texts]
        out = []
        with self._lock:
            for i in range(0, len(cut), chunk):
                part = cut[i: i + chunk]
                out.append(np.asarray(run(model, part), dtype=np.float32).reshape(len(part), -1))
        return normalize_rows(np.vstack(out))
