"""What every classifier returns: top-k labels per record with confidences and the deciding words, plus the small
steps the classifiers share to build it (top-k of a probability matrix, record ids, evidence words).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class Predictions:
    """Top-k labels per record, best first, with calibrated confidences and the deciding words of the best."""

    ids: list[str]
    labels: np.ndarray
    confidence: np.ndarray
    evidence: list[list[str]] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def to_frame(self) -> pd.DataFrame:
        """Columns id, label, [label_name], confidence, evidence, then label_2, confidence_2, … for alternatives."""
        out: dict[str, Any] = {"id": self.ids, "label": self.labels[:, 0].tolist()}
        if self.names:
            out["label_name"] = [self.names.get(str(v), "") for v in self.labels[:, 0]]
        out["confidence"] = np.round(self.confidence[:, 0], 4)
        out["evidence"] = [" ".join(e) for e in self.evidence] if self.evidence else ""
        for j in range(1, self.labels.shape[1]):
            out[f"label_{j + 1}"] = self.labels[:, j].tolist()
            out[f"confidence_{j + 1}"] = np.round(self.confidence[:, j], 4)
        return pd.DataFrame(out)


def top_k(p: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column numbers of each row's ``k`` largest probabilities, best first (ties keep column order), and those
    probabilities.
    """
    top = np.argsort(-p, axis=1, kind="stable")[:, :k]
    return top, np.take_along_axis(p, top, axis=1)


def record_ids(records: pd.DataFrame | Sequence[str], ids: Sequence[str] | None) -> list[str]:
    """The ids given, else the records' ``id`` column, else row numbers from 1."""
    if ids is not None:
        return list(ids)
    if isinstance(records, pd.DataFrame) and "id" in records:
        return records["id"].astype(str).tolist()
    return [str(i + 1) for i in range(len(records))]


def distinct_words(candidates: Iterable[str], n: int) -> list[str]:
    """The first ``n`` candidates (best first) that neither contain nor sit inside one already taken, so evidence
    does not list 锂电池 beside 锂电 and 电池.
    """
    out: list[str] = []
    for word in candidates:
        if len(out) >= n:
            break
        if not any(word in w or w in word for w in out):
            out.append(word)
    return out


def check_fitted(model: Any, attribute: str) -> None:
    """Raise scikit-learn's ``NotFittedError`` (a ``ValueError``) when ``model`` has not learned ``attribute`` yet."""
    if not hasattr(model, attribute):
        from sklearn.exceptions import NotFittedError

        raise NotFittedError(f"this {type(model).__name__} is not fitted yet: call fit() first")
