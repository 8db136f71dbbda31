"""What every classifier returns: top-k labels per record with confidences and the deciding words."""

from __future__ import annotations

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

