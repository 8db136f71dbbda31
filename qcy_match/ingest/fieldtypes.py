"""The value types a record field accepts, so a JSON object or a list in the wrong place is refused by name.

JSONL (and Python callers) can put any value in any field; without this check an id given as a list or a title as
an object would be kept as its Python repr ("['A1', 'A2']") and matched as text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

# Fields holding one value (text or a number), and fields holding one value or a flat list of them.
SINGLE = ("id", "title", "description", "region", "maturity", "transfer_mode")
LISTS = ("industry", "keywords", "owner", "team", "leader", "parts")


_PLAIN = (str, int, float, type(None))


def wrong_type(rec: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(field, reason)`` for the first record field whose value has a type it cannot hold, else None."""
    for field in SINGLE:
        value = rec.get(field)
        if value.__class__ not in _PLAIN and _is_container(value):
            return field, f"expected text or a number, got {_kind(value)}"
    for field in LISTS:
        value = rec.get(field)
        if isinstance(value, Mapping):
            return field, f"expected text or a list, got {_kind(value)}"
        if isinstance(value, list | tuple | np.ndarray) and any(_is_container(v) for v in value):
            return field, "expected a list of text or numbers, got a list holding lists or objects"
    return None


def _is_container(value: Any) -> bool:
    return isinstance(value, Mapping | list | tuple | set | np.ndarray)


def _kind(value: Any) -> str:
    return "a JSON object" if isinstance(value, Mapping) else f"a {type(value).__name__}"
