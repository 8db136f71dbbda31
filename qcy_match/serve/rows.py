"""Match results as JSON rows with the CLI's output columns (what ``Matches.to_frame`` gives), built directly.

``to_frame`` builds a DataFrame, which costs more than the match itself for one query; a service answering one
query per request builds the same rows from the arrays instead (``tests/test_serve.py`` checks they are equal).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..ingest.records import FIELDS
from ..match.results import LABEL, SIDES, Matches, flatten

_SKIP = {*FIELDS, "region_city", "region_group", "tokens"}


def metadata_columns(df: pd.DataFrame) -> list[str]:
    """Columns echoed as metadata: not record fields, not derived, not private."""
    return [c for c in df.columns if c not in _SKIP and not str(c).startswith("_")]


def cell(value: Any) -> Any:
    """A table cell as a JSON value: lists joined with ';' as the CLI writes them, NaN and NA as null."""
    if isinstance(value, list | tuple | np.ndarray):
        return ";".join(str(v) for v in value)
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return value


def _columns(df: pd.DataFrame, names: list[str], rows: np.ndarray) -> dict[str, list[Any]]:
    return {c: [cell(v) for v in df[c].take(rows).tolist()] for c in names}


def rows_of(m: Matches, queries: pd.DataFrame, corpus: pd.DataFrame) -> list[list[dict[str, Any]]]:
    """For each query, its matches as dicts in the column order of the CLI's tables."""
    q_label = LABEL[m.query_side]
    r_label = LABEL[SIDES[1 - SIDES.index(m.query_side)]]
    qi, rj = np.nonzero(m.indices >= 0)
    doc = m.indices[qi, rj]
    scores = np.round(m.scores[qi, rj].astype(np.float64), 6).tolist()
    c_names = ["title", "industry", "region", "maturity", "transfer_mode", *metadata_columns(corpus)]
    q_names = ["title", *metadata_columns(queries)]
    c_vals = _columns(corpus, c_names, doc)
    q_vals = _columns(queries, q_names, qi)
    out: list[list[dict[str, Any]]] = [[] for _ in m.query_ids]
    for n, (i, j) in enumerate(zip(qi.tolist(), rj.tolist(), strict=True)):
        row: dict[str, Any] = {f"{q_label}_id": m.query_ids[i], f"{r_label}_id": cell(m.ids[i, j]),
                               "rank": j + 1, "score": scores[n], f"{q_label}_title": q_vals["title"][n],
                               f"{r_label}_title": c_vals["title"][n]}
        if m.explanations:
            row.update({k: cell(v) for k, v in flatten(m.explanations[i][j]).items()})
        row.update({f"{r_label}_{c}": c_vals[c][n] for c in c_names[1:]})
        row.update({f"{q_label}_{c}": q_vals[c][n] for c in q_names[1:]})
        out[i].append(row)
    return out
