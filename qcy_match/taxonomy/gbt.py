"""GB/T 4754-2017 industry codes: look-ups, normalisation, validation and hierarchical agreement.

Codes are stored canonically as the 门类 letter followed by the digits (``C``, ``C39``, ``C397``, ``C3973``), so a
prefix test answers "is this code inside that one" at every level.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from ..errors import UnknownCodeError

LEVELS = {1: "门类", 2: "大类", 3: "中类", 4: "小类"}
AGREEMENT = ("none", "门类", "大类", "中类", "小类")
_CODE = re.compile(r"^([A-Ta-t])?(\d{2,4})?$")
# How people write codes: 'C 3973', 'C-3973', 'C3973 集成电路制造', '3973（集成电路制造）'.
_CODE_WITH_NAME = re.compile(r"^([A-Ta-t]?)[-_.\s]?(\d{2,4})?[\s(（:：-]*([^\d]*?)[)）]?$")


@dataclass(frozen=True)
class Industry:
    """One node of the GB/T 4754-2017 tree."""

    code: str
    name: str
    level: int
    parent: str | None
    tags: tuple[str, ...]
    strategic: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, Industry], dict[str, str], dict[str, str]]:
    raw: dict[str, Any] = json.loads(resources.files("qcy_match.data").joinpath("gbt4754.json").read_text("utf-8"))
    nodes = {n["code"]: Industry(n["code"], n["name"], n["level"], n["parent"], tuple(n["tags"]),
                                 tuple(n.get("strategic", ())), tuple(n.get("includes", ())),
                                 tuple(n.get("excludes", ())))
             for n in raw["nodes"]}
    by_digits = {code[1:]: code for code in nodes if len(code) > 1}
    by_name = {n.name: code for code, n in nodes.items()}
    return nodes, by_digits, by_name


def industries() -> dict[str, Industry]:
    """Return every node keyed by canonical code."""
    return _tables()[0]


def normalize_code(value: str) -> str:
    """Return the canonical code for ``C3973``, ``3973``, ``c39``, ``C``, ``C-3973``, ``3973 集成电路制造`` or an
    exact industry name such as ``计算机、通信和其他电子设备制造业``.

    Raises :class:`UnknownCodeError` naming the nearest codes when the value is not a GB/T 4754-2017 code.
    """
    nodes, by_digits, by_name = _tables()
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if text.replace(" ", "") in by_name:
        return by_name[text.replace(" ", "")]
    m = _CODE_WITH_NAME.match(text)
    if m and (m.group(1) or m.group(2)):
        letter, digits, name = m.group(1).upper(), m.group(2) or "", m.group(3).strip()
        code = letter if not digits and letter in nodes else by_digits.get(digits)
        # A name written after the code must agree with it; a letter must be the code's 门类.
        if code and (not letter or code[0] == letter) and (not name or name == nodes[code].name):
            return code
    raise UnknownCodeError(_unknown_message(text))


def validate(value: str) -> str:
    """Alias of :func:`normalize_code` for readers who think of it as a check."""
    return normalize_code(value)


def _unknown_message(text: str) -> str:
    nodes = industries()
    digits = re.sub(r"\D", "", text)
    hint: list[Industry] = []
    where = "code"
    if digits:
        # An unknown number is most often a typo in the last digit: offer the codes under its longest known prefix.
        by_digits = _tables()[1]
        for width in range(min(len(digits), 4) - 1, 1, -1):
            parent = by_digits.get(digits[:width])
            if parent:
                hint = children(parent)[:5] or [nodes[parent]]
                break
    if not hint:
        hint, where = search(re.sub(r"[\dA-Za-z\s]", "", text), limit=3), "name"
    listed = ", ".join(f"{n.code} {n.name}" for n in hint)
    return f"unknown GB/T 4754-2017 code {text!r}" + (f"; nearest by {where}: {listed}" if hint else "")


def path(code: str) -> list[Industry]:
    """The nodes from the 门类 down to ``code`` (given in any form :func:`normalize_code` accepts)."""
    nodes = industries()
    out: list[Industry] = []
    cur: str | None = normalize_code(code)
    while cur:
        out.append(nodes[cur])
        cur = nodes[cur].parent
    return out[::-1]


def children(code: str | None = None) -> list[Industry]:
    """Direct children of ``code``; the 20 门类 when ``code`` is None."""
    parent = None if code is None else normalize_code(code)
    return [n for n in industries().values() if n.parent == parent]


def descendants(code: str, level: int = 4) -> list[str]:
    """Codes at ``level`` under ``code`` (itself when it is at that level already)."""
    c = normalize_code(code)
    return [k for k, n in industries().items() if n.level == level and k.startswith(c)] or [c]


def at_level(code: str, level: int) -> str:
    """The ancestor of a canonical code at ``level`` (1 门类 … 4 小类); the code itself when it is shallower."""
    width = {1: 1, 2: 3, 3: 4, 4: 5}[level]
    return code[:width]


def search(query: str, limit: int = 10) -> list[Industry]:
    """Industries whose name or product notes are nearest to ``query``, shallow and exact name hits first.

    Nearness is the character overlap (Jaccard) with the name or the closest product term, so 锂电池 finds
    锂离子电池制造 through its 锂原电池 and 钛合金 finds the codes listing 钛合金 products.
    """
    q = unicodedata.normalize("NFKC", str(query)).strip()
    if not q:
        return []
    chars = set(q)

    def score(n: Industry) -> tuple[float, float, int, str]:
        best = max(len(chars & set(w)) / len(set(w) | chars) for w in (n.name, *n.includes))
        return (-float(q in n.name), -best, n.level, n.code)
    ranked = sorted(industries().values(), key=score)
    return [n for n in ranked if chars & set(n.name + "".join(n.includes))][:limit]


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
