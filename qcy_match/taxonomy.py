"""GB/T 4754-2017 industry codes: normalisation, validation and hierarchical agreement.

Codes are stored canonically as the 门类 letter followed by the digits (``C``, ``C39``, ``C397``, ``C3973``), so a
prefix test answers "is this code inside that one" at every level.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

LEVELS = {1: "门类", 2: "大类", 3: "中类", 4: "小类"}
AGREEMENT = ("none", "门类", "大类", "中类", "小类")
_CODE = re.compile(r"^([A-Ta-t])?\s*(\d{2,4})?$")


@dataclass(frozen=True)
class Industry:
    """One node of the GB/T 4754-2017 tree."""

    code: str
    name: str
    level: int
    parent: str | None
    tags: tuple[str, ...]


class UnknownCodeError(ValueError):
    """A code or name that is not in GB/T 4754-2017."""


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, Industry], dict[str, str], dict[str, str]]:
    raw: dict[str, Any] = json.loads(resources.files("qcy_match.data").joinpath("gbt4754.json").read_text("utf-8"))
    nodes = {n["code"]: Industry(n["code"], n["name"], n["level"], n["parent"], tuple(n["tags"]))
             for n in raw["nodes"]}
    by_digits = {code[1:]: code for code in nodes if len(code) > 1}
    by_name = {n.name: code for code, n in nodes.items()}
    return nodes, by_digits, by_name


def industries() -> dict[str, Industry]:
    """Return every node keyed by canonical code."""
    return _tables()[0]


def normalize_code(value: str) -> str:
    """Return the canonical code for ``C3973``, ``3973``, ``c39``, ``C`` or an exact industry name.

    Raises :class:`UnknownCodeError` with the nearest names when the value is not a GB/T 4754-2017 code.
    """
    nodes, by_digits, by_name = _tables()
    text = str(value).strip().replace(" ", "")
    if text in by_name:
        return by_name[text]
    m = _CODE.match(text)
    if m and (m.group(1) or m.group(2)):
        letter, digits = (m.group(1) or "").upper(), m.group(2) or ""
        if not digits and letter in nodes:
            return letter
        code = by_digits.get(digits)
        if code and (not letter or code[0] == letter):
            return code
    raise UnknownCodeError(_unknown_message(text))


def _unknown_message(text: str) -> str:
    nodes = industries()
    chars = set(text)
    scored = sorted(nodes.values(), key=lambda n: (-len(chars & set(n.name)), n.level, n.code))
    hint = ", ".join(f"{n.code} {n.name}" for n in scored[:3] if chars & set(n.name))
    return f"unknown GB/T 4754-2017 code {text!r}" + (f"; nearest by name: {hint}" if hint else "")


def agreement(codes_a: list[str], codes_b: list[str]) -> str:
    """Return the deepest level two code lists share: 小类, 中类, 大类, 门类 or none."""
    best = 0
    for a in codes_a:
        for b in codes_b:
            n = 0
            # Level 1 is the letter; each further level adds one digit after the two-digit 大类.
            for level, width in ((1, 1), (2, 3), (3, 4), (4, 5)):
                if len(a) >= width and len(b) >= width and a[:width] == b[:width]:
                    n = level
            best = max(best, n)
    return AGREEMENT[best]


def name_of(code: str) -> str:
    """Return the industry name of a canonical code, or '' when unknown."""
    node = industries().get(code)
    return node.name if node else ""
