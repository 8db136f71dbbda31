"""Match results: arrays of shape (n_queries, k) plus one explanation per match, and their table form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .records import FIELDS

SIDES = ("needs", "achievements")
LABEL = {"needs": "need", "achievements": "achievement"}


@dataclass
class Matches:
    """Results of one batch. Rows are queries; ``indices`` is -1 and ``scores`` NaN where a row has fewer than k.

    ``ids[i, j]`` is the id of the j-th best record for query ``query_ids[i]``; ``explanations[i][j]`` says why.
    """

    query_ids: list[str]
    indices: np.ndarray
    ids: np.ndarray
    scores: np.ndarray
    explanations: list[list[dict[str, Any]]] = field(default_factory=list)
    query_side: str = "needs"

    def __len__(self) -> int:
        return len(self.query_ids)

    def to_frame(self, queries: pd.DataFrame | None = None, corpus: pd.DataFrame | None = None) -> pd.DataFrame:
        """One row per match: query id, result id, 1-based rank, score, explanation fields, echoed metadata."""
        q_label = LABEL[self.query_side]
        r_label = LABEL[SIDES[1 - SIDES.index(self.query_side)]]
        rows: list[dict[str, Any]] = []
        q_meta = _metadata(queries)
        r_meta = _metadata(corpus)
        for i, qid in enumerate(self.query_ids):
            for j in range(self.indices.shape[1]):
                doc = int(self.indices[i, j])
                if doc < 0:
                    break
                row: dict[str, Any] = {f"{q_label}_id": qid, f"{r_label}_id": self.ids[i, j], "rank": j + 1,
                                       "score": round(float(self.scores[i, j]), 6)}
                if queries is not None:
                    row[f"{q_label}_title"] = queries.iloc[i]["title"]
                if corpus is not None:
                    row[f"{r_label}_title"] = corpus.iloc[doc]["title"]
                if self.explanations:
                    row.update(flatten(self.explanations[i][j]))
                if corpus is not None:
                    rec = corpus.iloc[doc]
                    for col in ("industry", "region", "maturity", "transfer_mode", *r_meta):
                        row[f"{r_label}_{col}"] = _cell(rec[col])
                if queries is not None:
                    rec = queries.iloc[i]
                    for col in q_meta:
                        row[f"{q_label}_{col}"] = _cell(rec[col])
                rows.append(row)
        df = pd.DataFrame(rows)
        for col in ("bm25_rank", "dense_rank"):
            if col in df:
                df[col] = df[col].astype("Int64")  # None means "not in that signal's candidate list"
        return df


def _metadata(df: pd.DataFrame | None) -> list[str]:
    if df is None:
        return []
    skip = {*FIELDS, "region_city", "region_group", "tokens"}
    return [c for c in df.columns if c not in skip and not str(c).startswith("_")]


def _cell(value: Any) -> Any:
    if isinstance(value, list | tuple | np.ndarray):
        return ";".join(str(v) for v in value)
    return value


def flatten(expl: dict[str, Any]) -> dict[str, Any]:
    """An explanation as flat table cells (shared keywords as 'word:weight; …')."""
    out = dict(expl)
    out["shared_keywords"] = "; ".join(f"{w}:{s:.2f}" for w, s in expl.get("shared_keywords", []))
    return out
