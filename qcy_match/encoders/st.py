"""Any local sentence-transformers model directory (the ``[st]`` extra). Never downloads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingExtraError
from .base import PretrainedEncoder, normalize_rows


class STEncoder(PretrainedEncoder):
    """A sentence-transformers model loaded from a local directory on the CPU, with the Hugging Face hub offline."""

    name = "st"

    def __init__(self, model_path: str = "", batch_size: int = 32, max_chars: int = 512) -> None:
        super().__init__()
        self.model_path = model_path
        self.batch_size = batch_size
        self.max_chars = max_chars

    @property
    def dim(self) -> int:
        """Vector width reported by the model."""
        model = self._load()
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    def _open(self) -> Any:
        path = Path(self.model_path).expanduser()
        if not self.model_path or not path.is_dir():
            raise FileNotFoundError(
                f"sentence-transformers model directory {self.model_path!r} not found; give a local "
                "directory (models are never downloaded)")
        # Set before the import so neither huggingface_hub nor transformers tries the network.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingExtraError(
                "the 'st' encoder needs the [st] extra: pip install torch==2.13.0 && "
                "pip install 'qcy-match[st]'") from exc
        return SentenceTransformer(str(path), device="cpu", local_files_only=True)

    def encode(self, texts: list[str], tokens: list[list[str]]) -> np.ndarray:
        """Encode texts cut to ``max_chars``."""
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vecs = model.encode([t[: self.max_chars] for t in texts], batch_size=self.batch_size,
                                show_progress_bar=False, convert_to_numpy=True, normalize_embeddings=True)
        return normalize_rows(vecs)

    def params(self) -> dict[str, Any]:
        """Parameters for the manifest (the model path, not the model)."""
        return {"model_path": str(self.model_path), "batch_size": self.batch_size, "max_chars": self.max_chars}
