"""Match requests in batches: validate every request's queries in one pass, group the requests that share ``k``,
filters and ``explain``, and match each group in one engine call; each request gets the rows it would get alone.

Building a DataFrame costs more than validating a query, so a batch validates all its queries as one table (ids
are made unique across requests by a prefix, so only duplicates inside one request clash). A request that uses a
column alias (编号, 名称 …: its mapping could depend on the other requests' columns), a blank id, or has a rejected
query is validated alone, which words its error exactly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FilterError
from ..ingest.records import PREPARED, canonical_columns, prepare
from ..match import filters as filt
from ..match.engine import MatchEngine
from .rows import QueryColumns, frame_columns, raw_columns, rows_batch

Result = tuple[list[str], list[list[dict[str, Any]]]]
SEP = "\x00"  # between a request's number and a query id; not whitespace, so id stripping keeps it


class FieldError(Exception):
    """A request field with a bad value; answered 422 naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass
class MatchItem:
    """One ``/v1/match`` request."""

    queries: Sequence[str | Mapping[str, Any]]
    k: int
    filters: Mapping[str, Any] | None
    explain: bool


def _rows(queries: Sequence[str | Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, q in enumerate(queries):
        row = {"title": q} if isinstance(q, str) else dict(q)
        if row.get("id") in (None, ""):
            row["id"] = f"q{i + 1}"
        out.append(row)
    return out


def prepare_queries(queries: Sequence[str | Mapping[str, Any]]) -> pd.DataFrame:
    """One request's queries as prepared records (a string is a title; ids default to q1, q2, …)."""
    prepared = prepare(pd.DataFrame(_rows(queries)), "<queries>")
    recs, rejects = prepared.records, prepared.rejected
    if rejects:
        r = rejects[0]
        raise FieldError(f"queries.{r.row - 1}.{r.field}", r.reason)
    return recs


def parse_filters(filters: Mapping[str, Any] | None, columns: pd.Index) -> dict[str, list[str]]:
    """Filters parsed, or :class:`FieldError` naming the bad one (``columns``: the indexed records')."""
    parsed: dict[str, list[str]] = {}
    for key, value in (filters or {}).items():
        if key not in filt.KEYS and (key not in columns or key.startswith("_")):
            raise FieldError(f"filters.{key}", f"unknown filter; use one of {', '.join(filt.KEYS)} or a metadata "
                             "column of the indexed records")
        try:
            parsed.update(filt.parse({key: value}))
        except FilterError as exc:
            raise FieldError(f"filters.{key}", str(exc)) from exc
    return parsed


def _prepared(frame: pd.DataFrame) -> pd.DataFrame:
    """Mark rows of frames that prepare() returned as prepared again, so the engine does not validate them twice
    (pandas does not always carry the mark through concatenation); a batch's ids repeat across requests, which a
    second validation would reject as duplicates.
    """
    frame.attrs[PREPARED] = [str(c) for c in frame.columns]
    return frame


def prepare_batch(requests: list[Sequence[str | Mapping[str, Any]]]
                  ) -> tuple[pd.DataFrame, list[tuple[int, int] | None]]:
    """All requests' queries as one prepared table, and each request's rows in it (None: validate it alone)."""
    rows: list[dict[str, Any]] = []
    owner: list[int] = []
    alone: set[int] = set()
    for r, queries in enumerate(requests):
        for row in _rows(queries):
            rid = str(row["id"]).strip()
            if not rid or any(canonical_columns([k]).get(k, k) != k for k in row):
                alone.add(r)
            row["id"] = f"{r}{SEP}{rid}"
            rows.append(row)
            owner.append(r)
    prepared = prepare(pd.DataFrame(rows), "<queries>")
    recs = prepared.records
    alone |= {owner[x.row - 1] for x in prepared.rejected}
    req = np.asarray(owner, dtype=np.int64)[prepared.rows - 1]
    if alone:
        keep = ~np.isin(req, list(alone))
        recs, req = recs[keep].reset_index(drop=True), req[keep]
    recs["id"] = [s.partition(SEP)[2] for s in recs["id"]]
    recs = _prepared(recs)
    # Rows keep the requests' order, so each request's rows are one run.
    starts = np.searchsorted(req, np.arange(len(requests) + 1))
    spans: list[tuple[int, int] | None] = [None if r in alone else (int(starts[r]), int(starts[r + 1]))
                                           for r in range(len(requests))]
    return recs, spans


def match_items(engine: MatchEngine, items: list[MatchItem]) -> list[Result | Exception]:
    """Each item's query ids and rows (or the exception that is its answer), matched as few engine calls as
    possible on ``engine``'s current snapshot.
    """
    out: list[Result | Exception] = [ValueError("not matched")] * len(items)
    recs, spans = prepare_batch([it.queries for it in items])
    columns = engine.records_.columns
    groups: dict[tuple[Any, ...], list[tuple[int, pd.DataFrame | tuple[int, int], QueryColumns]]] = {}
    for n, (item, span) in enumerate(zip(items, spans, strict=True)):
        try:
            parsed = parse_filters(item.filters, columns)
            if span is None:
                frame = prepare_queries(item.queries)
                part: pd.DataFrame | tuple[int, int] = frame
                cols = frame_columns(frame)
            else:
                part, cols = span, raw_columns(recs["title"].iloc[span[0]:span[1]].tolist(), item.queries)
        except Exception as exc:  # a bad field (422) or worse: that request's answer, not the batch's
            out[n] = exc
            continue
        key = (item.k, json.dumps(parsed, sort_keys=True, ensure_ascii=False), item.explain)
        groups.setdefault(key, []).append((n, part, cols))
    corpus = engine.records_
    for (k, filters_json, explain), members in groups.items():
        try:
            spans_only = [p for _, p, _ in members if isinstance(p, tuple)]
            if len(spans_only) == len(members) and spans_only[0][0] == 0 and spans_only[-1][1] == len(recs) \
                    and all(a[1] == b[0] for a, b in zip(spans_only, spans_only[1:], strict=False)):
                frame = recs  # the common case: one group holding the whole batch
            else:
                frame = _prepared(pd.concat([recs.iloc[p[0]:p[1]] if isinstance(p, tuple) else p
                                             for _, p, _ in members], ignore_index=True))
            m = engine.match(frame, k=k, filters=json.loads(filters_json), explain_matches=explain)
            start = 0
            for (n, _, _), rows in zip(members, rows_batch(m, [c for _, _, c in members], corpus), strict=True):
                out[n] = (m.query_ids[start:start + len(rows)], rows)
                start += len(rows)
        except Exception as exc:
            for n, _, _ in members:
                out[n] = exc
    return out
