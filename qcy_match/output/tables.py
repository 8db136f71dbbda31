"""Write tables: CSV/TSV, XLSX, JSONL and Parquet, with spreadsheet formulas escaped in one place."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputError
from ..ingest.tables import table_format

_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value: Any) -> Any:
    """Prefix a quote to text a spreadsheet would run as a formula (OWASP CSV injection advice)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def write_table(df: pd.DataFrame, path: str | os.PathLike[str], append: bool = False) -> None:
    """Write a table in the format its extension names; CSV and XLSX cells are formula-escaped."""
    path = Path(path)
    fmt = table_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt in ("csv", "tsv", "xlsx"):
        df = df.apply(lambda col: col.map(escape_formula)
                      if col.dtype == object or pd.api.types.is_string_dtype(col) else col)
    if fmt in ("csv", "tsv"):
        df.to_csv(path, index=False, sep="\t" if fmt == "tsv" else ",", mode="a" if append else "w",
                  header=not (append and path.exists() and path.stat().st_size > 0),
                  encoding="utf-8-sig" if not append or not path.exists() else "utf-8")
    elif fmt in ("jsonl", "json"):
        with open(path, "a" if append else "w", encoding="utf-8") as fh:
            for rec in df.to_dict(orient="records"):
                fh.write(json.dumps(rec, ensure_ascii=False, default=_json_default) + "\n")
    elif fmt == "xlsx":
        if append:
            raise InputError(f"{path}: XLSX output cannot be appended; use CSV or JSONL for streamed output")
        # Control characters cannot be stored in a worksheet; they are replaced instead of failing the write.
        df = df.apply(lambda col: col.map(lambda v: _XLSX_ILLEGAL.sub("\ufffd", v) if isinstance(v, str) else v)
                      if col.dtype == object or pd.api.types.is_string_dtype(col) else col)
        df.to_excel(path, index=False)
    else:
        if append:
            raise InputError(f"{path}: Parquet output cannot be appended; use CSV or JSONL for streamed output")
        df.to_parquet(path, index=False)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)
