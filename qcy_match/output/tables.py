"""Write tables: CSV/TSV, XLSX, JSONL and Parquet, with spreadsheet formulas escaped in one place.

Every CSV, TSV and XLSX the package writes goes through :func:`for_spreadsheet`: text that a spreadsheet would run
as a formula gets a leading quote (OWASP's CSV-injection advice), column names included, and in CSV a carriage
return inside a value becomes a line feed, which the CSV writer always quotes (a bare CR left unquoted starts a new
row in most readers, so the text after it could be read as a formula of its own).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputError
from ..ingest.tables import table_format

_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CR = re.compile(r"\r\n?")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
# Excel refuses longer sheet names.
MAX_SHEET_NAME = 31


def escape_formula(value: Any) -> Any:
    """Prefix a quote to text a spreadsheet would run as a formula (OWASP CSV injection advice)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def for_spreadsheet(df: pd.DataFrame, fmt: str) -> pd.DataFrame:
    """A copy of ``df`` safe to write as ``fmt`` (``csv``, ``tsv`` or ``xlsx``): see the module docstring.

    In XLSX, control characters a worksheet cannot store are replaced by U+FFFD instead of failing the write.
    """
    if fmt == "xlsx":
        def clean(v: Any) -> Any:
            return escape_formula(_XLSX_ILLEGAL.sub("\ufffd", v)) if isinstance(v, str) else v
    else:
        def clean(v: Any) -> Any:
            return escape_formula(_CR.sub("\n", v)) if isinstance(v, str) else v
    # Numbers, booleans and dates are not text; any other column (object, string, category) may hold text.
    out = df.copy(deep=False)
    for i in range(df.shape[1]):
        col = df.iloc[:, i]
        if col.dtype.kind not in "biufcmM":
            out.isetitem(i, col.astype(object).map(clean).to_numpy(dtype=object))
    out.columns = [clean(c) for c in df.columns]
    return out


def write_table(df: pd.DataFrame, path: str | os.PathLike[str], append: bool = False) -> None:
    """Write a table in the format its extension names; CSV and XLSX cells are formula-escaped."""
    path = Path(path)
    fmt = table_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt in ("csv", "tsv"):
        for_spreadsheet(df, fmt).to_csv(
            path, index=False, sep="\t" if fmt == "tsv" else ",", mode="a" if append else "w",
            header=not (append and path.exists() and path.stat().st_size > 0),
            encoding="utf-8-sig" if not append or not path.exists() else "utf-8")
    elif fmt in ("jsonl", "json"):
        with open(path, "a" if append else "w", encoding="utf-8") as fh:
            for rec in df.to_dict(orient="records"):
                fh.write(json.dumps(rec, ensure_ascii=False, default=_json_default) + "\n")
    elif fmt == "xlsx":
        if append:
            raise InputError(f"{path}: XLSX output cannot be appended; use CSV or JSONL for streamed output")
        write_sheets({"Sheet1": df}, path)
    else:
        if append:
            raise InputError(f"{path}: Parquet output cannot be appended; use CSV or JSONL for streamed output")
        df.to_parquet(path, index=False)


def write_sheets(tables: Mapping[str, pd.DataFrame], path: str | os.PathLike[str]) -> None:
    """Write one XLSX workbook with a sheet per table (names cut to Excel's 31 characters), formula-escaped."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        for name, df in tables.items():
            for_spreadsheet(df, "xlsx").to_excel(xw, sheet_name=name[:MAX_SHEET_NAME], index=False)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)
