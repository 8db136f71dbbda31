"""What a Spark executor runs: plain pandas in, pandas out, no pyspark import.

The unit of work is "one index directory, one batch of queries": :func:`open_index` opens a directory once per
Python worker and keeps it (keyed by its path and :func:`qcy_match.persistence.version`, so an index saved again
is opened again), and :func:`match_batches` matches each batch against it with :meth:`MatchEngine.match` and turns
the result into the table rows of ``qcy-match match`` (:meth:`Matches.to_frame`). Nothing of the index crosses the
network: executors read the directory themselves, from storage every node sees.

Rows travel between the stages as ``(_row, _record)``: the input row number and the raw row as JSON text, so a
list, a number or a misplaced object reaches :func:`qcy_match.ingest.records.prepare` as it was written.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from .. import persistence
from ..ingest.records import prepare
from ..match import filters as filt
from ..match.engine import MatchEngine

ROW, RECORD = "_row", "_record"  # the row number and the raw row (JSON) of the validated stage
REJECTION = ("file", "row", "field", "reason", "value")  # the rejected-rows report's columns
# Spark types of the output columns, by the pandas dtype to_frame gives them.
LONG, DOUBLE, BOOL, TEXT = "long", "double", "boolean", "string"

_ENGINES: dict[tuple[str, str], MatchEngine] = {}
_LOCK = threading.Lock()


def open_index(path: str) -> MatchEngine:
    """The engine of an index directory, loaded once per Python worker and kept while the directory is unchanged."""
    key = (os.path.realpath(path), persistence.version(path))
    with _LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            for old in [k for k in _ENGINES if k[0] == key[0]]:  # an older version of the same directory
                del _ENGINES[old]
            engine = _ENGINES[key] = MatchEngine.load(path)
        return engine


def records_of(batch: pd.DataFrame) -> pd.DataFrame:
    """The raw rows of a ``(_row, _record)`` batch as a frame with the reader's row column, ready for ``prepare``."""
    rows = [json.loads(r) for r in batch[RECORD]]
    raw = pd.DataFrame(rows) if rows else pd.DataFrame()
    raw[ROW] = batch[ROW].to_numpy(dtype=np.int64)
    return raw


def validate_batches(batches: Iterable[pd.DataFrame], source: str) -> Iterator[pd.DataFrame]:
    """Validate each batch with the ingest rules: a usable row keeps its record and gets its normalised ``id``
    (for the job-wide duplicate check), a rejected one gets the report's columns instead.
    """
    for batch in batches:
        prepared = prepare(records_of(batch), source)
        kept = {int(r): i for i, r in zip(prepared.records["id"], prepared.rows, strict=True)}
        bad = {r.row: r for r in prepared.rejected}
        out: list[tuple[Any, ...]] = []
        for row, record in zip(batch[ROW].tolist(), batch[RECORD].tolist(), strict=True):
            rej = bad.get(int(row))
            if rej is not None:
                out.append((row, None, None, rej.file, rej.row, rej.field, rej.reason, rej.value))
            else:
                out.append((row, kept[int(row)], record, None, None, None, None, None))
        yield pd.DataFrame(out, columns=[ROW, "id", RECORD, *REJECTION]).astype({ROW: "int64", "row": "Int64"})


def describe(index: str, query_columns: list[str], filters: dict[str, list[str]], searched: str | None = None
             ) -> list[tuple[str, str]]:
    """The output columns and their Spark types for queries with ``query_columns``: one made-up query matched
    against the index (the dense signal always finds records), so they are exactly :meth:`Matches.to_frame`'s.
    Also refuses filters on fields the searched records lack, before the job starts.

    ``searched``: the index searched when it is not ``index`` (direction achievements: an index of the needs).
    """
    engine = open_index(searched or index)
    filt.mask(engine.records_.iloc[:0], filters)
    probe = {c: None for c in query_columns} | {"id": "probe", "title": "技术"}
    queries = prepare(pd.DataFrame([probe])).records
    table = engine.match(queries, k=1).to_frame(queries, engine.records_)
    return [(str(c), _kind(table[c].dtype)) for c in table.columns]


def _kind(dtype: Any) -> str:
    if pd.api.types.is_bool_dtype(dtype):
        return BOOL
    if pd.api.types.is_integer_dtype(dtype):
        return LONG
    if pd.api.types.is_float_dtype(dtype):
        return DOUBLE
    return TEXT


def match_batches(batches: Iterable[pd.DataFrame], index: str, k: int, filters: dict[str, list[str]],
                  columns: list[tuple[str, str]]) -> Iterator[pd.DataFrame]:
    """Needs (validated ``(_row, _record)`` rows) matched against the index directory: the table rows of
    ``qcy-match match`` with the ``columns`` :func:`describe` gave.
    """
    engine = open_index(index)
    for batch in batches:
        if len(batch):
            queries = prepare(records_of(batch)).records
            yield _table(engine, queries, k, filters, columns)


def match_positions(batches: Iterable[pd.DataFrame], index: str, searched: str, k: int,
                    filters: dict[str, list[str]], columns: list[tuple[str, str]]) -> Iterator[pd.DataFrame]:
    """Direction achievements: the records of ``index`` at the positions in column ``pos`` matched against the
    index ``searched`` (the needs, indexed by the driver).
    """
    queries_of, engine = open_index(index).records_, open_index(searched)
    for batch in batches:
        if len(batch):
            queries = queries_of.iloc[batch["pos"].to_numpy(dtype=np.int64)].reset_index(drop=True)
            yield _table(engine, queries, k, filters, columns)


def _table(engine: MatchEngine, queries: pd.DataFrame, k: int, filters: dict[str, list[str]],
           columns: list[tuple[str, str]]) -> pd.DataFrame:
    table = engine.match(queries, k=k, filters=filters or None).to_frame(queries, engine.records_)
    return conform(table, columns)


def conform(table: pd.DataFrame, columns: list[tuple[str, str]]) -> pd.DataFrame:
    """A table with exactly ``columns``, each cell of its column's type (a missing column is null)."""
    out: dict[str, Any] = {}
    for name, kind in columns:
        col = table[name] if name in table else pd.Series([None] * len(table), dtype=object)
        if kind == LONG:
            out[name] = pd.Series(col, dtype=object).astype("Int64")
        elif kind == DOUBLE:
            out[name] = pd.to_numeric(col, errors="coerce").astype("float64")
        elif kind == BOOL:
            out[name] = pd.Series(col, dtype=object).astype("boolean")
        else:
            out[name] = [None if _missing(v) else str(v) for v in col]
    return pd.DataFrame(out, index=range(len(table)))


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))

