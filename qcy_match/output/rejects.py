"""The rejected-rows report: every input row that could not be used, with file, row, field and reason."""

from __future__ import annotations

import os

import pandas as pd

from ..errors import RejectedRowsError
from ..ingest.tables import Rejection
from .tables import write_table


def report_rejections(rejects: list[Rejection], path: str | os.PathLike[str], strict: bool = False) -> str:
    """Write the rejected-rows report (even when empty, so a job always leaves one) and return a one-line summary.

    With ``strict``, any rejection raises :class:`RejectedRowsError` naming the first few rows, after the report is
    written so the user can read it.
    """
    write_table(rejections_frame(rejects), path)
    if rejects and strict:
        first = "; ".join(f"{r.file} row {r.row} field {r.field}: {r.reason}" for r in rejects[:3])
        raise RejectedRowsError(f"--strict: {len(rejects)} rows rejected (report: {path}); first: {first}")
    return f"{len(rejects)} rejected rows → {path}"


def rejections_frame(rejects: list[Rejection]) -> pd.DataFrame:
    """Rejections as a table with columns file, row, field, reason, value."""
    return pd.DataFrame([r.to_dict() for r in rejects], columns=["file", "row", "field", "reason", "value"])
