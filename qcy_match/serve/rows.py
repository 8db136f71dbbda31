"""Match results as JSON rows with the CLI's output columns (what ``Matches.to_frame`` gives), built directly.

``to_frame`` builds a DataFrame, which costs more than the match itself for one query; a service answering one
query per request builds the same rows from the arrays instead (``tests/test_serve.py`` checks they are equal).
A batch of requests matched together reads the matched records' columns once for all of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..match.results import LABEL, NOT_METADATA, SIDES, Matches, flatten, metadata_columns

Rows = list[list[dict[str, Any]]]
QueryColumns = dict[str, list[Any]]


def cell(value: Any) -> Any:
    """A table cell as a JSON value: lists joined with ';' as the CLI writes them, NaN and NA as null."""
    if isinstance(value, list | tuple | np.ndarray):
        return ";".join(str(v) for v in value)
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return value


def frame_columns(queries: pd.DataFrame) -> QueryColumns:
    """The query-side cells of the rows (title, then metadata), read from a prepared frame."""
    return {c: [cell(v) for v in queries[c].tolist()] for c in ["title", *metadata_columns(queries)]}


def raw_columns(titles: list[str], queries: Sequence[str | Mapping[str, Any]]) -> QueryColumns:
    """The same from the request's own queries (their prepared titles given): metadata keys in order of first
    appearance, as a frame of these queries would hold them.
    """
    dicts = [q for q in queries if not isinstance(q, str)]
    keys = dict.fromkeys(k for q in dicts for k in q if k not in NOT_METADATA and not str(k).startswith("_"))
    cols: QueryColumns = {"title": titles}
    for k in keys:
        cols[k] = [None if isinstance(q, str) else cell(q.get(k)) for q in queries]
    return cols


def rows_of(m: Matches, queries: pd.DataFrame, corpus: pd.DataFrame) -> Rows:
    """For each query, its matches as dicts in the column order of the CLI's tables."""
    return rows_batch(m, [frame_columns(queries)], corpus)[0]


def rows_batch(m: Matches, parts: list[QueryColumns], corpus: pd.DataFrame) -> list[Rows]:
    """:func:`rows_of` for several requests matched as one: ``m`` covers the queries of ``parts`` in order."""
    q_label = LABEL[m.query_side]
    r_label = LABEL[SIDES[1 - SIDES.index(m.query_side)]]
    qi, rj = np.nonzero(m.indices >= 0)
    doc = m.indices[qi, rj]
    scores = np.round(m.scores[qi, rj].astype(np.float64), 6).tolist()
    conf = None if m.confidence is None else np.round(m.confidence[qi, rj].astype(np.float64), 4).tolist()
    c_names = ["title", "industry", "region", "maturity", "transfer_mode", *metadata_columns(corpus)]
    c_vals = {c: [cell(v) for v in corpus[c].take(doc).tolist()] for c in c_names}
    ids = [cell(v) for v in m.ids[qi, rj].tolist()]
    expl = [{k: cell(v) for k, v in flatten(m.explanations[i][j]).items()} for i, j in zip(qi, rj, strict=True)] \
        if m.explanations else None
    out: list[Rows] = []
    qi_list, rj_list = qi.tolist(), rj.tolist()
    n = 0
    start = 0
    for q_vals in parts:
        size = len(q_vals["title"])
        q_names = list(q_vals)
        rows: Rows = [[] for _ in range(size)]
        while n < len(qi_list) and qi_list[n] < start + size:
            i, j = qi_list[n] - start, rj_list[n]
            row: dict[str, Any] = {f"{q_label}_id": m.query_ids[start + i], f"{r_label}_id": ids[n], "rank": j + 1,
                                   "score": scores[n]}
            if conf is not None:
                row["confidence"] = conf[n]
            row.update({f"{q_label}_title": q_vals["title"][i], f"{r_label}_title": c_vals["title"][n]})
            if expl is not None:
                row.update(expl[n])
            row.update({f"{r_label}_{c}": c_vals[c][n] for c in c_names[1:]})
            row.update({f"{q_label}_{c}": q_vals[c][i] for c in q_names[1:]})
            rows[i].append(row)
            n += 1
        out.append(rows)
        start += size
    return out
