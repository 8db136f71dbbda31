"""Tag records that have no industry code with a classifier's best GB/T 4754 code (``index --classify-missing``)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from ..errors import UnknownCodeError
from ..taxonomy import gbt as taxonomy

logger = logging.getLogger(__name__)


def fill_missing_industry(records: pd.DataFrame, classifier: Any, threshold: float = 0.5) -> pd.DataFrame:
    """Give records without an industry code the classifier's best code when its confidence reaches ``threshold``.

    Adds ``industry_source`` (``given`` / ``inferred`` / empty when still unknown) and ``industry_confidence``
    (empty for given codes). The classifier must be fitted and its labels GB/T 4754 codes (a zero-shot one at
    门类–小类 level, or a supervised one trained on codes).
    """
    out = records.copy()
    missing = np.array([len(c) == 0 for c in out["industry"]], dtype=bool)
    source = np.where(missing, "", "given").astype(object)
    conf = np.full(len(out), np.nan)
    if missing.any():
        pred = classifier.predict(out[missing].reset_index(drop=True), k=1)
        codes = list(out["industry"])
        for j, i in enumerate(np.flatnonzero(missing)):
            if pred.confidence[j, 0] >= threshold:
                try:
                    code = taxonomy.normalize_code(str(pred.labels[j, 0]))
                except UnknownCodeError as exc:
                    raise ValueError(f"the classifier's label {pred.labels[j, 0]!r} is not a GB/T 4754 code; "
                                     "tag industries with a model trained on industry codes") from exc
                codes[i], source[i], conf[i] = [code], "inferred", round(float(pred.confidence[j, 0]), 4)
        out["industry"] = codes
        logger.info("inferred industry codes for %d of %d records without one", int((source == "inferred").sum()),
                    int(missing.sum()))
    out["industry_source"] = source
    out["industry_confidence"] = conf
    return out
