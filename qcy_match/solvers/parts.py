"""A challenge's parts: the sub-problems a consortium divides among its members.

Where the parts come from, first that applies:

1. ``parts``: an explicit list in the record (a list, a JSON list, or text separated by ``;`` ``；`` or line breaks).
2. An enumeration in the description: 一是…二是…, 其一…其二…, 第一,…第二,…, (1)…(2)…, 1.…2.…, 一、…二、…, or ①…②…
   after punctuation (reading folds ① to 1, so ①A②B without punctuation reads as one part). A style counts only
   when its markers count up from one, so "3项专利" is no enumeration. The items are the parts: each runs to the
   next marker, the last to the end of its sentence. The lead-in before the first marker (需要攻克以下难题：) is
   context, and so are the sentences after the last item unless they open with 此外 / 另外 / 同时 / 其次 / 再者,
   which add a part each.
3. Otherwise the description's sentences and clauses: split at 。！？；, and before 此外 / 另外 / 同时 / 其次 / 再者
   after a comma.
4. Otherwise the title.

A part is usable when it holds at least :data:`MIN_CHARS` letters, digits or Chinese characters; a challenge
without a usable part is reported by the caller, never matched on nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ..text import normalize

MIN_CHARS = 4
SOURCES = ("parts", "enumeration", "sentences", "title")
_NUMERALS = "一二三四五六七八九十"
_CN = f"[{_NUMERALS}]"
# Texts arrive normalised (ingest folds '；' to ';', '、' and '，' to ',', '。' to '.', '（' to '(' and ① to 1).
_AFTER_BREAK = r"(?:^|(?<=[\s,.;:!?()\[\]]))"
_STYLES = (
    re.compile(_AFTER_BREAK + rf"({_CN})是"),
    re.compile(_AFTER_BREAK + rf"其({_CN})[,:]?"),
    re.compile(_AFTER_BREAK + rf"第({_CN})[,:]"),  # a comma or colon after it: 第一代 is a word
    re.compile(rf"\(\s*([0-9]{{1,2}}|{_CN})\s*\)"),
    re.compile(_AFTER_BREAK + r"([0-9]{1,2})(?:[.,)](?!\d)|(?=[\u4e00-\u9fff]))"),
    re.compile(_AFTER_BREAK + rf"({_CN}),"),
)
_SENTENCE_END = re.compile(r"\.(?!\d)|[!?;]")
_ADDITIVE = "此外|另外|同时|其次|再者"
_BEFORE_ADDITIVE = re.compile(rf"[,:]\s*(?=(?:{_ADDITIVE}))")
_LEADING = re.compile(rf"^(?:(?:{_ADDITIVE})(?:还|也)?[,:]?\s*)+")
_EDGE_PUNCT = " ,.;:!?"
_EXPLICIT_SPLIT = re.compile(r"[;|\r\n]+")


def _ordinal(text: str) -> int:
    return int(text) if text.isdigit() else _NUMERALS.index(text) + 1


def usable(part: str) -> bool:
    """Whether a part holds enough to match on (:data:`MIN_CHARS` letters, digits or Chinese characters)."""
    return sum(ch.isalnum() for ch in part) >= MIN_CHARS


def _clean(part: str) -> str:
    return _LEADING.sub("", part.strip(_EDGE_PUNCT)).strip(_EDGE_PUNCT)


def explicit_parts(cell: Any) -> list[str]:
    """The parts a record lists itself (empty when it lists none)."""
    if cell is None or (isinstance(cell, float) and cell != cell):
        return []
    items: Iterable[Any]
    if isinstance(cell, np.ndarray):
        items = cell.tolist()
    elif isinstance(cell, list | tuple):
        items = cell
    else:
        text = str(cell).strip()
        items = [text]
        if text.startswith("["):
            try:
                parsed = json.loads(text)
                items = parsed if isinstance(parsed, list) else [text]
            except json.JSONDecodeError:
                pass
        if len(items) == 1:
            items = _EXPLICIT_SPLIT.split(normalize(items[0]) if isinstance(items[0], str) else str(items[0]))
    return [p for p in dict.fromkeys(_clean(normalize(i)) for i in items if i is not None) if p]


def _enumeration(text: str) -> list[re.Match[str]]:
    """The longest run of markers of one style counting up from one (empty when none has two)."""
    best: list[re.Match[str]] = []
    for style in _STYLES:
        found = list(style.finditer(text))
        for i, first in enumerate(found):
            if _ordinal(first.group(1)) != 1:
                continue
            run = [first]
            for m in found[i + 1:]:
                if _ordinal(m.group(1)) == len(run) + 1 and m.start() >= run[-1].end():
                    run.append(m)
            if len(run) > len(best) or (len(run) == len(best) and run and best and run[0].start() < best[0].start()):
                best = run
    return best if len(best) >= 2 else []


def _sentences(text: str) -> list[str]:
    """Sentences and clauses (split at sentence ends, and before an additive marker after a comma)."""
    out = []
    for sentence in _SENTENCE_END.split(text):
        out.extend(_BEFORE_ADDITIVE.split(sentence))
    return [c for c in (_clean(s) for s in out) if c]


def split_text(description: str) -> tuple[list[str], str]:
    """Parts of a (normalised) description and how they were found: ``enumeration`` or ``sentences``."""
    run = _enumeration(description)
    if not run:
        return _sentences(description), "sentences"
    parts = [description[a.end():b.start()] for a, b in zip(run, run[1:], strict=False)]
    tail = description[run[-1].end():]
    end = _SENTENCE_END.search(tail)
    parts.append(tail[:end.start()] if end else tail)
    if end:  # sentences after the enumeration: context, unless they add a part
        parts.extend(s for s in _SENTENCE_END.split(tail[end.end():])
                     if re.match(rf"\s*(?:{_ADDITIVE})", s))
    return [p for p in (_clean(p) for p in parts) if p], "enumeration"


def split_parts(title: str, description: str = "", parts: Any = None) -> tuple[list[str], str]:
    """The usable parts of one challenge, in order, and their source (one of :data:`SOURCES`); ``([], '')`` when
    nothing usable is left.
    """
    listed = [p for p in explicit_parts(parts) if usable(p)]
    if listed:
        return listed, "parts"
    found, how = split_text(normalize(description))
    found = [p for p in dict.fromkeys(found) if usable(p)]
    if found:
        return found, how
    title = _clean(normalize(title))
    return ([title], "title") if usable(title) else ([], "")


def split_records(records: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parts of prepared challenge records: ``(parts, unusable)``.

    ``parts``: one row per part, ``need_id, part`` (1-based), ``part_text, source``. ``unusable``: ``need_id,
    title, reason`` for each challenge without a usable part.
    """
    rows: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    listed = records["parts"] if "parts" in records else [None] * len(records)
    for rid, title, desc, cell in zip(records["id"].astype(str), records["title"], records["description"], listed,
                                      strict=True):
        found, how = split_parts(title, desc, cell)
        if not found:
            bad.append({"need_id": rid, "title": title,
                        "reason": f"no usable part: no part, sentence or title holds {MIN_CHARS} letters or "
                                  "Chinese characters"})
        rows.extend({"need_id": rid, "part": i, "part_text": p, "source": how} for i, p in enumerate(found, 1))
    return (pd.DataFrame(rows, columns=["need_id", "part", "part_text", "source"]),
            pd.DataFrame(bad, columns=["need_id", "title", "reason"]))
