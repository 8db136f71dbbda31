"""What every reader shares: the rejected-row record, the limits on input size, and the row checks.

The limits keep a hostile or broken file from taking the machine: past one of them the row is rejected (a field or
a row too large) or the file is refused with :class:`~qcy_match.errors.InputError` (a header too wide, a workbook
that would inflate too far). The README's "Limits" section lists them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import InputError

# A header of more columns is refused: 100,000 columns took minutes and gigabytes; real exports have dozens.
MAX_COLUMNS = 1_000
# A longer field rejects its row. Descriptions of a few megabytes still pass (the engine cuts what it indexes).
MAX_FIELD_CHARS = 8 << 20
# A longer row (a CSV record with its quoted line breaks, a JSONL line) is rejected without being held in memory.
MAX_ROW_BYTES = 32 << 20
REPLACEMENT = "\ufffd"


@dataclass(frozen=True)
class Rejection:
    """One input row that could not be used, and why."""

    file: str
    row: int
    field: str
    reason: str
    value: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the rejection as a plain dict (one report row)."""
        return asdict(self)


# One row from a reader: its number, then either the record or why it was rejected (file left blank, filled in
# once by the caller).
Row = tuple[int, dict[str, Any] | None, Rejection | None]


def header_names(path: object, cells: list[Any]) -> list[str]:
    """Column names from a header row: trailing blank cells dropped, a blank one inside named ``column N``.

    Refuses a header that is blank, too wide, or names a column twice.
    """
    names = [("" if c is None else str(c)).strip() for c in cells]
    while names and not names[-1]:
        names.pop()
    if len(names) > MAX_COLUMNS:
        raise InputError(f"{path}: the header has {len(names):,} columns; the limit is {MAX_COLUMNS:,}")
    if not names:
        raise InputError(f"{path}: the first line must be a header naming the columns")
    # Blank names would all map to one key, each column overwriting the one before.
    names = [n or f"column {i}" for i, n in enumerate(names, 1)]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        # A second column of the same name would silently overwrite the first in every row.
        raise InputError(f"{path}: the header names columns more than once: {', '.join(dupes)}")
    return names


def fit_row(rownum: int, values: list[str], header: list[str], decoded: bool = True) -> Row | None:
    """A row of cells (as text) under ``header``: None when blank, rejected when too wide or a cell is bad.

    Blank rows are layout, not data, in every format. Blank cells past the header are dropped (spreadsheets
    export trailing separators); a value there rejects the row, as it would otherwise belong to no column.
    ``decoded`` says the text came from bytes this package decoded, where U+FFFD marks bytes that failed.
    """
    if not "".join(values).strip():
        return None
    width = len(header)
    if len(values) > width:
        if "".join(values[width:]).strip():
            return rownum, None, Rejection("", rownum, "<row>", f"{len(values)} fields but the header has {width}",
                                           cut(values))
        values = values[:width]
    elif len(values) < width:
        values = values + [""] * (width - len(values))
    rec = dict(zip(header, values, strict=True))
    # The common case costs two C-level scans; check_row then names the field only when one is bad.
    if (decoded and REPLACEMENT in "".join(values)) or max(map(len, values)) > MAX_FIELD_CHARS:
        return check_row(rownum, rec, decoded)
    return rownum, rec, None


def check_row(rownum: int, rec: dict[str, Any], decoded: bool = True) -> Row:
    """Reject a row holding undecodable bytes (when ``decoded``) or a field over :data:`MAX_FIELD_CHARS`."""
    for key, value in rec.items():
        if decoded and (REPLACEMENT in str(key) or (isinstance(value, str) and REPLACEMENT in value)):
            return rownum, None, Rejection("", rownum, str(key), "undecodable bytes (not UTF-8 or GB18030)",
                                           cut(value))
        if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
            return rownum, None, Rejection("", rownum, str(key), f"field of {len(value):,} characters; the limit "
                                           f"is {MAX_FIELD_CHARS:,}", cut(value))
    return rownum, rec, None


def cut(value: Any, n: int = 80) -> str:
    """A value shortened for a report cell."""
    if isinstance(value, str):
        s = value
    else:
        # A list of huge fields would be serialised whole just to keep 80 characters of it.
        if isinstance(value, list):
            value = [v[:n] if isinstance(v, str) else v for v in value[:n]]
        s = json.dumps(value, ensure_ascii=False, default=str)
    return s if len(s) <= n else s[: n - 1] + "…"
