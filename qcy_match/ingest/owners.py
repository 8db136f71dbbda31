"""Who holds a record: owners (完成单位), teams and leaders, several per cell, normalised so that one institution is
one owner however its name was typed.

A cell may name several owners separated by ``; ； 、 , ，`` or line breaks (or be a list). Each name is folded like
matching text (full-width → half-width, traditional → simplified, see :func:`qcy_match.text.normalize`), and spaces
next to a Chinese character are dropped (``西安 交通大学`` is ``西安交通大学``) while spaces between Latin words stay
(``Xi'an Jiaotong University``). A record's owners are kept as one text cell, the names joined by :data:`SEP`, so
the column reads, saves and prints like any other; :func:`owners_of` splits it again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..text import normalize

# Record columns holding names of holders; each may list several.
OWNER_FIELDS = ("owner", "team", "leader")
SEP = ";"
# After normalize(): '；' is ';', '，' and '、' are ','.
_SPLIT = re.compile(r"[;,]+")
_LINES = re.compile(r"[\r\n]+")
# A space with a non-ASCII character on either side carries nothing in a Chinese name.
_CJK_SPACE = re.compile(r"\s+(?=[^\x00-\x7f])|(?<=[^\x00-\x7f])\s+")
_EDGES = " .。·'\"`"


def owner_name(text: object) -> str:
    """One owner's name in its canonical form ('' when nothing is left)."""
    name = _CJK_SPACE.sub("", normalize(text))
    return name.strip(_EDGES)


def split_owners(value: Any) -> list[str]:
    """The distinct owners named in a cell (text with separators, or a list), in the order written."""
    if value is None or (isinstance(value, float) and value != value):
        return []
    items = value.tolist() if isinstance(value, np.ndarray) else value
    if not isinstance(items, list | tuple):
        items = [items]
    out: list[str] = []
    for item in items:
        if item is None or (isinstance(item, float) and item != item):
            continue
        for line in _LINES.split(str(item)):
            for part in _SPLIT.split(normalize(line)):
                name = owner_name(part)
                if name and name not in out:
                    out.append(name)
    return out


def join_owners(names: Iterable[str]) -> str:
    """The cell holding ``names`` (canonical names never contain :data:`SEP`)."""
    return SEP.join(names)


def canonical_cell(value: Any) -> str:
    """A cell as it is stored: its owners, canonical and joined."""
    return join_owners(split_owners(value))


def owners_of(cell: Any) -> list[str]:
    """The owners of a stored cell ('' or a missing value: none)."""
    if not isinstance(cell, str) or not cell:
        return []
    return [n for n in cell.split(SEP) if n]
