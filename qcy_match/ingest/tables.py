"""Read tables: CSV/TSV, XLSX, JSONL and Parquet, with Chinese encodings and row-level errors.

Readers never raise on a bad row: they return the good rows and a list of :class:`Rejection` naming the file, the
1-based data row (the header is not counted; for JSONL the row is the line number) and the field.
"""

from __future__ import annotations

import codecs
import csv
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputError

logger = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".xlsx": "xlsx", ".xlsm": "xlsx", ".jsonl": "jsonl",
           ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}
REPLACEMENT = "\ufffd"
# Descriptions of several megabytes are accepted (the engine cuts what it indexes); csv's default limit is 128 KiB.
MAX_FIELD_CHARS = 64 << 20


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


def table_format(path: str | os.PathLike[str]) -> str:
    """Return the format name for a path, from its extension."""
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise InputError(f"{path}: unknown file type {ext!r}; use one of {', '.join(sorted(FORMATS))}")
    return FORMATS[ext]


def decode_bytes(raw: bytes) -> tuple[str, str]:
    """Decode file bytes as UTF-8 (with or without BOM) or GB18030, the encodings Chinese exports use.

    Returns ``(text, encoding)``. If no encoding decodes cleanly, the one with fewest errors is used with
    U+FFFD in place of bad bytes, so the rows that hold them can be rejected one by one.
    """
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(enc), enc
        except UnicodeDecodeError:
            continue
    best = min(("utf-8-sig", "gb18030"), key=lambda e: raw.decode(e, errors="replace").count(REPLACEMENT))
    return raw.decode(best, errors="replace"), best + " (with undecodable bytes)"


def detect_encoding(path: Path) -> tuple[str, str]:
    """The encoding of a file, found by streaming it through incremental decoders (constant memory).

    Returns ``(encoding, errors)``: ``errors`` is ``"replace"`` when no encoding decodes every byte, as in
    :func:`decode_bytes`.
    """
    encodings = ("utf-8-sig", "gb18030")

    def bad_count(enc: str, errors: str) -> int:
        dec = codecs.getincrementaldecoder(enc)(errors=errors)
        n = 0
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                n += dec.decode(block).count(REPLACEMENT)
            n += dec.decode(b"", final=True).count(REPLACEMENT)
        return n

    for enc in encodings:
        try:
            bad_count(enc, "strict")
            return enc, "strict"
        except UnicodeDecodeError:
            continue
    return min(encodings, key=lambda e: bad_count(e, "replace")), "replace"


def read_table(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, list[Rejection]]:
    """Read a whole table as strings/lists with a ``_row`` column (1-based data row), plus rejected rows."""
    frames = list(iter_table(path, chunk_rows=None))
    rejects = [r for _, rej in frames for r in rej]
    dfs = [df for df, _ in frames if len(df)]
    df = pd.concat(dfs, ignore_index=True) if dfs else pd.DataFrame({"_row": pd.Series([], dtype="int64")})
    return df, rejects


def iter_table(path: str | os.PathLike[str], chunk_rows: int | None = 50_000
               ) -> Iterator[tuple[pd.DataFrame, list[Rejection]]]:
    """Yield ``(rows, rejections)`` chunks of a table; ``chunk_rows=None`` yields one chunk."""
    path = Path(path)
    fmt = table_format(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    name = str(path)
    if fmt in ("csv", "tsv"):
        yield from _chunks(_iter_delimited(path, fmt), chunk_rows, name)
    elif fmt in ("jsonl", "json"):
        yield from _chunks(_iter_jsonl(path), chunk_rows, name)
    elif fmt == "xlsx":
        try:
            df = pd.read_excel(path, dtype=str, keep_default_na=False)
        except Exception as exc:  # openpyxl raises many types for damaged workbooks
            raise InputError(f"{path}: not a readable XLSX workbook ({exc})") from exc
        df = _with_rows(df)
        # Blank rows inside a sheet are layout, not data, as blank lines are in CSV and JSONL.
        blank = df.drop(columns="_row").apply(lambda r: not any(str(v).strip() for v in r), axis=1)
        yield df[~blank.astype(bool)].reset_index(drop=True), []
    else:
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise InputError(f"{path}: not a readable Parquet file ({exc})") from exc
        yield _with_rows(df), []


def _with_rows(df: pd.DataFrame) -> pd.DataFrame:
    df = df.reset_index(drop=True)
    df.insert(0, "_row", range(1, len(df) + 1))
    return df


Row = tuple[int, dict[str, Any] | None, Rejection | None]


def _chunks(rows: Iterator[Row], chunk_rows: int | None, name: str) -> Iterator[tuple[pd.DataFrame, list[Rejection]]]:
    buf: list[dict[str, Any]] = []
    rejects: list[Rejection] = []
    for rownum, rec, rej in rows:
        if rej is not None:
            rejects.append(Rejection(name, *_rest(rej)))
        elif rec is not None:
            rec["_row"] = rownum
            buf.append(rec)
        if chunk_rows and len(buf) >= chunk_rows:
            yield pd.DataFrame(buf), rejects
            buf, rejects = [], []
    if buf or rejects or chunk_rows is None:
        yield (pd.DataFrame(buf) if buf else pd.DataFrame({"_row": pd.Series([], dtype="int64")})), rejects


def _rest(rej: Rejection) -> tuple[int, str, str, str]:
    return rej.row, rej.field, rej.reason, rej.value


def _iter_delimited(path: Path, fmt: str) -> Iterator[Row]:
    encoding, errors = detect_encoding(path)
    logger.debug("%s: decoded as %s (%s)", path, encoding, errors)
    csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_CHARS))
    with open(path, encoding=encoding, errors=errors, newline="") as fh:
        first = fh.readline()
        fh.seek(0)
        delimiter = "\t" if fmt == "tsv" or ("\t" in first and "," not in first) else ","
        yield from _delimited_rows(path, csv.reader(fh, delimiter=delimiter))


def _delimited_rows(path: Path, reader: Any) -> Iterator[Row]:
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        raise InputError(f"{path}: cannot read the header line ({exc})") from exc
    if not any(header):
        raise InputError(f"{path}: the first line must be a header naming the columns")
    dupes = sorted({h for h in header if h and header.count(h) > 1})
    if dupes:
        # A second column of the same name would silently overwrite the first in every row.
        raise InputError(f"{path}: the header names columns more than once: {', '.join(dupes)}")
    rownum = 0
    while True:
        rownum += 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield rownum, None, Rejection("", rownum, "<row>", f"malformed CSV ({exc})")
            continue
        if not any(v.strip() for v in values):
            continue
        if len(values) > len(header):
            yield rownum, None, Rejection("", rownum, "<row>",
                                          f"{len(values)} fields but the header has {len(header)}", _cut(values))
            continue
        values = values + [""] * (len(header) - len(values))
        yield (rownum, *_check_decoded(dict(zip(header, values, strict=True)), rownum))


def _iter_jsonl(path: Path) -> Iterator[Row]:
    encoding, errors = detect_encoding(path)
    with open(path, encoding=encoding, errors=errors, newline="") as fh:
        head = fh.read(4096)
        fh.seek(0)
        if path.suffix.lower() == ".json" and head.lstrip().startswith("["):
            # A JSON array has to be parsed whole; JSONL is the streamed format.
            try:
                items = json.loads(fh.read())
            except (json.JSONDecodeError, RecursionError) as exc:
                raise InputError(f"{path}: invalid JSON ({exc})") from exc
            for i, item in enumerate(items, 1):
                yield _json_row(i, item)
            return
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                yield i, None, Rejection("", i, "<line>", f"invalid JSON ({exc.msg} at column {exc.colno})",
                                         _cut(line))
                continue
            except RecursionError:
                yield i, None, Rejection("", i, "<line>", "JSON nested too deeply", _cut(line))
                continue
            yield _json_row(i, item)


def _json_row(i: int, item: Any) -> Row:
    if not isinstance(item, dict):
        return i, None, Rejection("", i, "<line>", f"expected a JSON object, got {type(item).__name__}", _cut(item))
    return (i, *_check_decoded(item, i))


def _check_decoded(rec: dict[str, Any], rownum: int) -> tuple[dict[str, Any] | None, Rejection | None]:
    for key, value in rec.items():
        if REPLACEMENT in str(key) or (isinstance(value, str) and REPLACEMENT in value):
            return None, Rejection("", rownum, str(key), "undecodable bytes (not UTF-8 or GB18030)", _cut(value))
    return rec, None


def _cut(value: Any, n: int = 80) -> str:
    s = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return s if len(s) <= n else s[: n - 1] + "…"
