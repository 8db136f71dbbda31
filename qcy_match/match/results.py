"""Match results: arrays of shape (n_queries, k) plus one explanation per match, and their table form."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..ingest.records import FIELDS
from ..ingest.tables import Rejection

SIDES = ("needs", "achievements")
LABEL = {"needs": "need", "achievements": "achievement"}


@dataclass
class Matches:
    """Results of one batch. Rows are queries; ``indices`` is -1 and ``scores`` NaN where a row has fewer than k.

    ``ids[i, j]`` is the id of the j-th best record for query ``query_ids[i]``; ``explanations[i][j]`` says why.
    ``rejected`` lists the queries that failed validation and so have no row. ``confidence`` (same shape as
    ``scores``, NaN in padding) is each match's calibrated chance of being accepted (:mod:`.confidence`); unlike
    ``score`` it is comparable across queries.
    """

    query_ids: list[str]
    indices: np.ndarray
    ids: np.ndarray
    scores: np.ndarray
    explanations: list[list[dict[str, Any]]] = field(default_factory=list)
    query_side: str = "needs"
    rejected: list[Rejection] = field(default_factory=list)
    confidence: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.query_ids)

    def with_confidence(self) -> Matches:
        """Copy each match's confidence into its explanation (in place); returns self."""
        if self.confidence is not None:
            for i, row in enumerate(self.explanations):
                for j, expl in enumerate(row):
                    expl["confidence"] = round(float(self.confidence[i, j]), 4)
        return self

    def above(self, min_confidence: float | None) -> Matches:
        """The matches whose confidence reaches ``min_confidence`` (each row keeps its order, padded at the end);
        None keeps all.
        """
        if min_confidence is None or self.confidence is None:
            return self
        keep = (self.indices >= 0) & (np.nan_to_num(self.confidence, nan=-1.0) >= min_confidence)
        # A stable sort moves the kept matches of each row to its front, in rank order.
        order = np.argsort(~keep, axis=1, kind="stable")
        kept = np.take_along_axis(keep, order, axis=1)

        def pack(a: np.ndarray, pad: Any) -> np.ndarray:
            return np.where(kept, np.take_along_axis(a, order, axis=1), pad)

        expl = [[row[j] for j in np.flatnonzero(keep[i])] for i, row in enumerate(self.explanations)]
        return replace(self, indices=pack(self.indices, -1), ids=pack(self.ids, None),
                       scores=pack(self.scores, np.nan).astype(self.scores.dtype),
                       confidence=pack(self.confidence, np.nan).astype(np.float32), explanations=expl)

    def to_frame(self, queries: pd.DataFrame | None = None, corpus: pd.DataFrame | None = None) -> pd.DataFrame:
        """One row per match: query id, result id, 1-based rank, score, explanation fields, echoed metadata."""
        q_label = LABEL[self.query_side]
        r_label = LABEL[SIDES[1 - SIDES.index(self.query_side)]]
        # Rows are padded at the end, so the kept cells in row-major order are each query's matches by rank.
        qi, rj = np.nonzero(self.indices >= 0)
        if len(qi) == 0:
            return pd.DataFrame()
        doc = self.indices[qi, rj]
        cols: dict[str, Any] = {f"{q_label}_id": np.asarray(self.query_ids, dtype=object)[qi],
                                f"{r_label}_id": self.ids[qi, rj], "rank": rj + 1,
                                "score": np.round(self.scores[qi, rj].astype(np.float64), 6)}
        if self.confidence is not None:
            cols["confidence"] = np.round(self.confidence[qi, rj].astype(np.float64), 4)
        if queries is not None:
            cols[f"{q_label}_title"] = _take(queries["title"], qi)
        if corpus is not None:
            cols[f"{r_label}_title"] = _take(corpus["title"], doc)
        df = pd.DataFrame(cols)
        if self.explanations:
            expl = pd.DataFrame([flatten(self.explanations[i][j]) for i, j in zip(qi, rj, strict=True)])
            df = pd.concat([df, expl], axis=1)
        extra: dict[str, Any] = {}
        if corpus is not None:
            for col in ("industry", "region", "maturity", "transfer_mode", *metadata_columns(corpus)):
                extra[f"{r_label}_{col}"] = _take(corpus[col], doc)
        if queries is not None:
            for col in metadata_columns(queries):
                extra[f"{q_label}_{col}"] = _take(queries[col], qi)
        if extra:
            df = pd.concat([df, pd.DataFrame(extra)], axis=1)
        for col in ("bm25_rank", "dense_rank"):
            if col in df:
                df[col] = df[col].astype("Int64")  # None means "not in that signal's candidate list"
        return df


def _take(column: pd.Series, rows: np.ndarray) -> pd.Series:
    """Cells of ``rows`` as table cells (lists joined with ';'), keeping the column's dtype otherwise."""
    out = column.take(rows).reset_index(drop=True)
    if out.dtype == object:
        out = pd.Series([_cell(v) for v in out], dtype=object).infer_objects()
    return out


# Columns of a records frame that are not echoed as metadata: the record fields, derived and private ones.
NOT_METADATA = frozenset({*FIELDS, "region_city", "region_group", "tokens"})


def metadata_columns(df: pd.DataFrame | None) -> list[str]:
    """Columns echoed as metadata in the output rows: not record fields, not derived, not private."""
    if df is None:
        return []
    return [c for c in df.columns if c not in NOT_METADATA and not str(c).startswith("_")]


def _cell(value: Any) -> Any:
    if isinstance(value, list | tuple | np.ndarray):
        return ";".join(str(v) for v in value)
    return value


def flatten(expl: dict[str, Any]) -> dict[str, Any]:
    """An explanation as flat table cells (shared keywords as 'word:weight; …')."""
    out = dict(expl)
    out.pop("confidence", None)  # a column of its own, beside the score
    out["shared_keywords"] = "; ".join(f"{w}:{s:.2f}" for w, s in expl.get("shared_keywords", []))
    return out
