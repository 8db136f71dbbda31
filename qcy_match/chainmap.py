"""Which Shaanxi industrial chain (产业链) a record belongs to, for the analytics.

A stop-gap kept in one small module on purpose: the taxonomy work will add a proper chain API, and only
:func:`record_chains` should need to call it then.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

OTHER = "其他"


@lru_cache(maxsize=1)
def _raw() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(
        resources.files("qcy_match.data").joinpath("shaanxi_chains.json").read_text("utf-8"))
    return data


@lru_cache(maxsize=1)
def _prefixes() -> list[tuple[str, str]]:
    """(GB/T 4754 digit prefix, chain name), longest prefix first so 144 (乳制品) wins over 14 (富硒食品)."""
    pairs = [(str(p), str(c["name"])) for c in _raw() for p in c.get("gbt4754", [])]
    return sorted(pairs, key=lambda t: -len(t[0]))


def chain_names() -> list[str]:
    """Every chain in the shipped list, in its order."""
    return [str(c["name"]) for c in _raw()]


def chains_of_codes(codes: Iterable[str]) -> list[str]:
    """Chains whose GB/T 4754 prefixes cover any of the canonical codes (``C3421``), in code order."""
    out: dict[str, None] = {}
    for code in codes:
        digits = str(code)[1:]
        for prefix, name in _prefixes():
            if digits.startswith(prefix):
                out.setdefault(name, None)
                break
    return list(out)


def record_chain(record: Mapping[str, Any]) -> str:
    """The one chain a record is counted under: its own ``chain`` column when filled, else the chain of its
    first industry code that belongs to one, else 其他.
    """
    own = record.get("chain")
    if isinstance(own, str) and own.strip():
        return own.strip()
    found = chains_of_codes(record.get("industry") or [])
    return found[0] if found else OTHER
