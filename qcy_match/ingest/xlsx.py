"""XLSX rows: one named sheet (or the only one with data), read after checking the zip cannot inflate too far.

A workbook is a zip of XML. A 1 MB file whose one cell inflates to 1 GB would take gigabytes of memory inside
openpyxl, so every entry's size and compression ratio are checked from the zip directory first. zipfile stops
reading an entry at the size its directory declares, so a directory that understates a size gains nothing.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from .rows import Row, fit_row, header_names

logger = logging.getLogger(__name__)

# An entry (a sheet, the shared strings) inflating past this is refused: about a million rows of eight columns.
MAX_ZIP_ENTRY_BYTES = 512 << 20
# Worksheet XML compresses about 15:1 even when every row is the same; zip bombs reach 1000:1.
MAX_ZIP_RATIO = 100
# Entries smaller than this are not checked for ratio: they cannot take much memory however well they compress.
RATIO_FLOOR_BYTES = 1 << 20


def check_zip(path: Path) -> None:
    """Refuse a workbook with an entry that would inflate past the limits, before anything is inflated."""
    try:
        with zipfile.ZipFile(path) as zf:
            entries = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable XLSX workbook ({exc})") from exc
    for entry in entries:
        size, packed = entry.file_size, max(entry.compress_size, 1)
        if size > MAX_ZIP_ENTRY_BYTES:
            raise InputError(f"{path}: {entry.filename} would inflate to {size:,} bytes; the limit is "
                             f"{MAX_ZIP_ENTRY_BYTES:,} (save the table as CSV instead)")
        if size > RATIO_FLOOR_BYTES and size > MAX_ZIP_RATIO * packed:
            raise InputError(f"{path}: {entry.filename} is compressed {size // packed:,}:1 ({size:,} bytes from "
                             f"{packed:,}); the limit is {MAX_ZIP_RATIO}:1, so the file is refused as a zip bomb")


def iter_xlsx(path: Path, sheet: str | int | None = None) -> Iterator[Row]:
    """Rows of one worksheet, numbered from 1 after its header row (the first non-blank row)."""
    check_zip(path)
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # openpyxl raises many types for damaged workbooks
        raise InputError(f"{path}: not a readable XLSX workbook ({exc})") from exc
    try:
        ws = _choose(path, book, sheet)
        try:
            yield from _sheet_rows(path, ws)
        except InputError:
            raise
        except Exception as exc:  # a damaged sheet fails part-way, with whatever the XML parser raises
            raise InputError(f"{path}: sheet {ws.title!r} cannot be read ({exc})") from exc
    finally:
        book.close()


def _sheet_rows(path: Path, ws: Any) -> Iterator[Row]:
    header: list[str] | None = None
    start = 0
    for number, cells in enumerate(ws.iter_rows(values_only=True), 1):
        values = [_text(v) for v in cells]
        if header is None:
            if any(v.strip() for v in values):
                header, start = header_names(f"{path} (sheet {ws.title!r})", values), number
            continue
        row = fit_row(number - start, values, header, decoded=False)
        if row is not None:
            yield row


def _choose(path: Path, book: Any, sheet: str | int | None) -> Any:
    """The worksheet named (by title or 0-based position), else the only one with data."""
    sheets = book.worksheets
    if not sheets:
        raise InputError(f"{path}: the workbook has no worksheets (only charts)")
    if isinstance(sheet, int) and not isinstance(sheet, bool):
        if not 0 <= sheet < len(sheets):
            raise InputError(f"{path}: no sheet at position {sheet}; the workbook has {len(sheets)}: "
                             f"{_names(sheets)}")
        return sheets[sheet]
    if sheet is not None:
        for ws in sheets:
            if ws.title == sheet:
                return ws
        raise InputError(f"{path}: no sheet named {sheet!r}; the workbook has {_names(sheets)}")
    filled = [ws for ws in sheets if _has_data(ws)]
    if len(filled) > 1:
        raise InputError(f"{path}: {len(filled)} sheets hold data ({_names(filled)}); name the one to read "
                         f"(sheet=…, or --sheet on the command line)")
    chosen = filled[0] if filled else sheets[0]
    if chosen is not sheets[0] or chosen.sheet_state != "visible":
        logger.info("%s: reading sheet %r, the only one with data", path, chosen.title)
    return chosen


def _has_data(ws: Any) -> bool:
    return any(any(_text(v).strip() for v in cells) for cells in ws.iter_rows(values_only=True))


def _names(sheets: list[Any]) -> str:
    return ", ".join(f"{ws.title!r}" + ("" if ws.sheet_state == "visible" else f" ({ws.sheet_state})")
                     for ws in sheets)


def _text(value: Any) -> str:
    """A cell as text, as pandas reads it with ``dtype=str``: whole floats without '.0', blanks as ''."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
