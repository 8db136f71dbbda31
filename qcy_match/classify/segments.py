"""Records read as segments: a record is a few fields (title, keywords, the sentences of its description), each a
list of text pieces. Models are usually trained on titles, and a whole abstract reads nothing like one, so the
supervised classifier scores the pieces and averages per field instead of scoring the record as one text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..text import normalize

Segments = list[list[str]]  # one record: groups (fields) of text pieces
_SENTENCE = re.compile(r"[。；;！？!?]|\.(?!\d)")  # a full stop between digits is a decimal point


def segments(records: pd.DataFrame | Sequence[str]) -> list[Segments]:
    """Split records into field groups: [title], [keywords], [sentences of the description]; plain strings into
    their sentences.
    """
    if not isinstance(records, pd.DataFrame):
        return [[sentences(normalize(t)) or [normalize(t)]] for t in records]
    out = []
    kws: Any = records["keywords"] if "keywords" in records else [[]] * len(records)
    desc: Any = records["description"] if "description" in records else [""] * len(records)
    for t, k, d in zip(records["title"], kws, desc, strict=True):
        groups = [[normalize(t)], [" ".join(k)] if len(k) else [], sentences(normalize(d))]
        out.append([g for g in groups if g and any(s.strip() for s in g)] or [[normalize(t)]])
    return out


def sentences(text: str) -> list[str]:
    """The sentences of a text, leaving out pieces of four characters or fewer."""
    return [s.strip() for s in _SENTENCE.split(text or "") if len(s.strip()) > 4]
