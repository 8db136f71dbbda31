"""Search an exported collection the way the engine searches: its filters as a Milvus expression, its encoder.

:func:`filter_expression` is the engine's filter semantics (:mod:`qcy_match.match.filters`) in Milvus's
expression language, over the fields :mod:`.export` writes: industry, chain and tag values test the ``codes``
array (which holds each code's ancestors, so "at or below" is membership); a region value is a group, a city or a
text inside the place; maturity and transfer mode are "the cell contains the value"; holders are membership in
the canonical names; a metadata column is equality with its text. :func:`dense_search` is the engine's filtered
dense search (the queries encoded by the index's own encoder), :func:`bm25_search` Milvus's full-text search.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..ingest.owners import OWNER_FIELDS
from ..match import filters as filt
from ..match.engine import MatchEngine, RecordsLike
from ..taxonomy import chains, regions


def _text(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a quoted string literal, escapes included


def _list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_text(v) for v in values) + "]"


def _like(field: str, value: str) -> str:
    """``field`` contains ``value`` (LIKE's wildcards in the value taken literally)."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{field} like {_text('%' + escaped + '%')}"


def filter_expression(filters: filt.Filters | Iterable[str] | None) -> str:
    """The Milvus filter expression that keeps exactly the records the engine's ``filters`` keep ('' for none)."""
    parsed = filt.parse([filters] if isinstance(filters, str) else filters)
    parts = []
    for key, values in parsed.items():
        if key == "industry":
            parts.append(f"ARRAY_CONTAINS_ANY(codes, {_list(values)})")
        elif key in ("chain", "tag"):
            parts.append(f"ARRAY_CONTAINS_ANY(codes, {_list(chains.expand(key, values))})")
        elif key == "region":
            parts.append(" or ".join(_region(v) for v in values))
        elif key in ("maturity", "transfer_mode"):
            parts.append(" or ".join(_like(key, v) for v in values))
        elif key in OWNER_FIELDS:
            parts.append(f"ARRAY_CONTAINS_ANY({key}, {_list(values)})")
        else:  # a metadata column, a dynamic field
            # 'in' wants a schema field on its left; a dynamic field takes one equality per value
            parts.append(" or ".join(f"$meta[{_text(key)}] == {_text(v)}" for v in values))
    return " and ".join(f"({p})" for p in parts)


def _region(value: str) -> str:
    """One region value, as :func:`qcy_match.taxonomy.regions.region_matches` reads it."""
    wanted = value.strip().removesuffix("市").removesuffix("地区")
    if wanted in regions.GROUPS:
        return f"region_group == {_text(wanted)}"
    if wanted in regions.CITIES:
        return f"region_city == {_text(wanted)}"
    return _like("region", wanted) if wanted else "region == \"\" and region != \"\""  # matches nothing


def dense_search(mc: Any, collection: str, engine: MatchEngine, queries: RecordsLike, k: int = 10,
                 filters: filt.Filters | Iterable[str] | None = None, ef: int = 256
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The engine's filtered dense search against the collection: ``(ids, scores)`` of shape (queries, k), best
    first, None and NaN where fewer records pass. ``queries``: records (dicts or a frame with id and title at
    least), encoded by ``engine`` (the index exported, with its encoder); ``ef`` is
    HNSW's search breadth (ignored by exact indexes).
    """
    vectors = engine.vectors(queries)
    hits = mc.search(collection, data=vectors.astype(np.float32).tolist(), anns_field="vector", limit=k,
                     filter=filter_expression(filters), search_params={"metric_type": "IP", "params": {"ef": ef}},
                     output_fields=["id"])
    return _arrays(hits, k)


def bm25_search(mc: Any, collection: str, texts: Sequence[str], k: int = 10,
                filters: filt.Filters | Iterable[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Milvus's own BM25 full-text search over ``text`` (a collection exported with the BM25 part)."""
    hits = mc.search(collection, data=list(texts), anns_field="text_sparse", limit=k,
                     filter=filter_expression(filters), search_params={"metric_type": "BM25"}, output_fields=["id"])
    return _arrays(hits, k)


def _arrays(hits: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.full((len(hits), k), None, dtype=object)
    scores = np.full((len(hits), k), np.nan, dtype=np.float32)
    for i, row in enumerate(hits):
        for j, hit in enumerate(row[:k]):
            ids[i, j], scores[i, j] = str(hit["id"]), float(hit["distance"])
    return ids, scores
