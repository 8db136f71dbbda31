"""Read tables: CSV/TSV, XLSX, JSONL and Parquet, with Chinese encodings and row-level errors.

Readers never raise on a bad row: they return the good rows and a list of :class:`Rejection` naming the file, the
1-based data row (the header is not counted; for JSONL the row is the line number) and the field. A file that
cannot be read at all, or passes one of the limits in :mod:`qcy_match.ingest.rows`, raises
:class:`~qcy_match.errors.InputError`. The formats live in their own modules: :mod:`.delimited`, :mod:`.jsonl`,
:mod:`.xlsx`; text decoding in :mod:`.encoding`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputError
from .delimited import iter_delimited
from .encoding import decode_bytes
from .jsonl import iter_jsonl
from .rows import MAX_COLUMNS, MAX_FIELD_CHARS, MAX_ROW_BYTES, Rejection, Row, cut
from .xlsx import iter_xlsx

__all__ = ["FORMATS", "MAX_COLUMNS", "MAX_FIELD_CHARS", "MAX_ROW_BYTES", "Rejection", "decode_bytes", "iter_table",
           "read_table", "table_format"]

logger = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".xlsx": "xlsx", ".xlsm": "xlsx", ".jsonl": "jsonl",
           ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}


def table_format(path: str | os.PathLike[str]) -> str:
    """Return the format name for a path, from its extension."""
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise InputError(f"{path}: unknown file type {ext!r}; use one of {', '.join(sorted(FORMATS))}")
    return FORMATS[ext]


def read_table(path: str | os.PathLike[str], sheet: str | int | None = None
               ) -> tuple[pd.DataFrame, list[Rejection]]:
    """Read a whole table as strings/lists with a ``_row`` column (1-based data row), plus rejected rows.

    ``sheet`` names the XLSX worksheet to read (its title, or its 0-based position); without it a workbook must
    have a single sheet holding data.
    """
    frames = list(iter_table(path, chunk_rows=None, sheet=sheet))
    rejects = [r for _, rej in frames for r in rej]
    dfs = [df for df, _ in frames if len(df)]
    df = pd.concat(dfs, ignore_index=True) if dfs else pd.DataFrame({"_row": pd.Series([], dtype="int64")})
    return df, rejects


def iter_table(path: str | os.PathLike[str], chunk_rows: int | None = 50_000, sheet: str | int | None = None
               ) -> Iterator[tuple[pd.DataFrame, list[Rejection]]]:
    """Yield ``(rows, rejections)`` chunks of a table; ``chunk_rows=None`` yields one chunk.

    ``sheet`` is for XLSX workbooks only (see :func:`read_table`); naming one for another format is an error.
    """
    path = Path(path)
    fmt = table_format(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if sheet is not None and fmt != "xlsx":
        raise InputError(f"{path}: sheet={sheet!r} names a worksheet, but this is a {fmt.upper()} file")
    if fmt == "parquet":
        # Parquet is columnar and typed: it stays a frame rather than going row by row.
        df, rejects = _read_parquet(path, str(path))
        step = chunk_rows or max(len(df), 1)
        for start in range(0, max(len(df), 1), step):
            yield df.iloc[start:start + step].reset_index(drop=True), rejects if start == 0 else []
        return
    rows: Iterator[Row]
    if fmt in ("csv", "tsv"):
        rows = iter_delimited(path, fmt)
    elif fmt in ("jsonl", "json"):
        rows = iter_jsonl(path)
    else:
        rows = iter_xlsx(path, sheet)
    yield from _chunks(rows, chunk_rows, str(path))


def _chunks(rows: Iterator[Row], chunk_rows: int | None, name: str) -> Iterator[tuple[pd.DataFrame, list[Rejection]]]:
    buf: list[dict[str, Any]] = []
    rejects: list[Rejection] = []
    for rownum, rec, rej in rows:
        if rej is not None:
            rejects.append(Rejection(name, rej.row, rej.field, rej.reason, rej.value))
        elif rec is not None:
            rec["_row"] = rownum
            buf.append(rec)
        if chunk_rows and len(buf) >= chunk_rows:
            yield pd.DataFrame(buf), rejects
            buf, rejects = [], []
    if buf or rejects or chunk_rows is None:
        yield (pd.DataFrame(buf) if buf else pd.DataFrame({"_row": pd.Series([], dtype="int64")})), rejects


def _read_parquet(path: Path, name: str) -> tuple[pd.DataFrame, list[Rejection]]:
    import pyarrow.parquet as pq

    try:
        width = len(pq.read_schema(path).names)
        if width > MAX_COLUMNS:
            raise InputError(f"{path}: the table has {width:,} columns; the limit is {MAX_COLUMNS:,}")
        df = pd.read_parquet(path)
    except InputError:
        raise
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from exc
    df = df.reset_index(drop=True)
    df.insert(0, "_row", range(1, len(df) + 1))
    # Only text columns can hold an oversized field; each is measured once, as a whole.
    rejects: dict[int, Rejection] = {}
    for col in df.columns[1:]:
        if df[col].dtype == object or pd.api.types.is_string_dtype(df[col]):
            lengths = df[col].map(lambda v: len(v) if isinstance(v, str) else 0).to_numpy()
            for at in (lengths > MAX_FIELD_CHARS).nonzero()[0].tolist():
                rejects.setdefault(at, Rejection(name, at + 1, str(col), f"field of {lengths[at]:,} characters; "
                                                 f"the limit is {MAX_FIELD_CHARS:,}", cut(df[col].iat[at])))
    if rejects:
        df = df.drop(index=list(rejects)).reset_index(drop=True)
    return df, [rejects[at] for at in sorted(rejects)]
