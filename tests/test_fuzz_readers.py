"""Fuzzed inputs: every reader either returns rows plus rejections or raises InputError naming the file, and loses
no row on the way."""

from __future__ import annotations

import json
import logging
import os
import re

import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qcy_match import EngineConfig, MatchEngine
from qcy_match.errors import InputError
from qcy_match.ingest.records import load_records
from qcy_match.ingest.tables import read_table
from qcy_match.output.tables import for_spreadsheet, write_table

# QCY_FUZZ_EXAMPLES raises the count for a long run (the README reports one).
FUZZ = settings(max_examples=int(os.environ.get("QCY_FUZZ_EXAMPLES", "40")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
SUFFIXES = [".csv", ".tsv", ".jsonl", ".json", ".xlsx", ".parquet"]
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
CELL = st.one_of(st.none(), TEXT, st.integers(), st.floats(allow_nan=True), st.booleans(),
                 st.lists(TEXT, max_size=3))


def read_or_refuse(path) -> None:
    """The contract: rows + rejections, or one InputError that names the file. Anything else fails the test."""
    try:
        records, rejects = load_records(path)
    except InputError as exc:
        assert str(path) in str(exc)
        return
    for r in rejects:
        assert r.file == str(path) and r.row >= 0 and r.reason
    assert len(records) == records["id"].nunique()


@FUZZ
@given(data=st.binary(max_size=400), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("fuzz") / f"in{suffix}"
    path.write_bytes(data)
    read_or_refuse(path)


@FUZZ
@given(text=st.text(max_size=300), suffix=st.sampled_from([".csv", ".tsv", ".jsonl", ".json"]))
def test_random_text(tmp_path_factory, text, suffix):
    path = tmp_path_factory.mktemp("fuzz") / f"in{suffix}"
    path.write_text("id,title,description\n" + text if suffix == ".csv" else text, encoding="utf-8")
    read_or_refuse(path)


ROWS = st.lists(st.dictionaries(st.sampled_from(["id", "title", "description", "industry", "region", "keywords",
                                                 "成果名称", "extra"]), CELL, max_size=6), min_size=1, max_size=8)


@FUZZ
@given(rows=ROWS, suffix=st.sampled_from(SUFFIXES))
def test_random_structures_lose_no_row(tmp_path_factory, rows, suffix):
    """Every non-blank row comes back either as a record or as a rejection: nothing vanishes."""
    path = tmp_path_factory.mktemp("fuzz") / f"in{suffix}"
    if suffix in (".jsonl", ".json"):
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    else:
        df = pd.DataFrame(rows).astype(str) if suffix != ".parquet" else pd.DataFrame(rows).astype(str)
        if df.shape[1] == 0:
            return
        write_table(df, path) if suffix != ".parquet" else df.to_parquet(path)
    try:
        raw, read_rejects = read_table(path)
        records, rejects = load_records(path)
    except InputError as exc:
        assert str(path) in str(exc)
        return
    assert len(records) + len(rejects) >= len(raw)  # blank rows are layout, not data


def test_huge_description_is_cut_with_a_warning(caplog):
    big = "钛合金锻件热处理工艺优化，" * 160_000  # ~2 M characters
    engine = MatchEngine(EngineConfig(encoder="lsa"))
    recs = [{"id": "BIG", "title": "钛合金锻件", "description": big},
            *({"id": f"S{i}", "title": f"锂电池回收 第{i}号", "description": "正极材料"} for i in range(5))]
    with caplog.at_level(logging.WARNING, logger="qcy_match.match.engine"):
        engine.index(recs)
        m = engine.match([{"id": "q", "title": "钛合金锻件", "description": big}], k=2)
    assert m.ids[0, 0] == "BIG"
    assert any("longer than" in r.message for r in caplog.records)
    assert len(engine.tokens_[0]) < 30_000
    assert len(engine.records_.loc[0, "description"]) == len(big.rstrip("，").strip()) or \
        len(engine.records_.loc[0, "description"]) > 1_900_000  # the stored record keeps its text


def test_csv_with_a_5mb_cell_is_read(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("id,title,description\nA1,钛合金," + "锻" * 5_000_000 + "\n", encoding="utf-8")
    records, rejects = load_records(path)
    assert rejects == [] and len(records.loc[0, "description"]) == 5_000_000


@pytest.mark.parametrize("value", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)"])
def test_output_cells_are_formula_escaped(tmp_path, value):
    out = tmp_path / "o.csv"
    write_table(pd.DataFrame({"title": [value]}), out)
    text = out.read_text(encoding="utf-8-sig")
    assert "'" + value.replace('"', '""') in text


def test_csv_duplicate_header_is_refused(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("id,title,title\nA1,a,b\n", encoding="utf-8")
    with pytest.raises(InputError, match="more than once: title"):
        read_table(path)


# ---- nothing lost: every physical row comes back, or is in the rejected rows ------------------------------------
# Cells with CSV's special characters, formula starts, line breaks and CJK, but no letter R: ids are R<n>, so no
# line inside a cell can pass for the start of a row (see ingest/delimited.py).
CELL_TEXT = st.text(alphabet=st.sampled_from(list("ab 1,\"'\r\n\t=+-@钛合金，。")), max_size=12)
TWO_CELLS = st.lists(st.lists(CELL_TEXT, min_size=2, max_size=2), min_size=1, max_size=12)


def _returned_or_rejected(path, n: int) -> tuple[dict[int, dict], set[int]]:
    """Read ``path`` and check that rows 1..n are each returned (with id R<row>) or rejected, and nothing else."""
    raw, rejects = read_table(path)
    returned = {int(r["_row"]): r for r in raw.to_dict(orient="records")}
    rejected = {r.row for r in rejects}
    assert all(r.file == str(path) and r.reason for r in rejects)
    assert not returned.keys() & rejected, "a row both returned and rejected"
    assert returned.keys() | rejected == set(range(1, n + 1)), "a row lost, or one that was never written"
    assert all(rec["id"] == f"R{row}" for row, rec in returned.items()), "rows numbered out of step"
    return returned, rejected


@FUZZ
@given(rows=TWO_CELLS, suffix=st.sampled_from([".csv", ".tsv", ".xlsx", ".jsonl"]))
def test_written_rows_all_come_back_whole(tmp_path_factory, rows, suffix):
    """What write_table writes, the readers read back: every row, each value as written (escaped)."""
    path = tmp_path_factory.mktemp("fuzz") / f"out{suffix}"
    df = pd.DataFrame([[f"R{i}", a, b] for i, (a, b) in enumerate(rows, 1)], columns=["id", "title", "note"])
    write_table(df, path)
    returned, rejected = _returned_or_rejected(path, len(rows))
    assert not rejected
    expected = df if suffix == ".jsonl" else for_spreadsheet(df, suffix[1:])
    for i, rec in returned.items():
        got = [str(rec[c]) for c in ("title", "note")]
        want = expected.iloc[i - 1, 1:].tolist()
        if suffix == ".xlsx":  # XML reads a stored CR or CR LF as one line feed
            want = [re.sub(r"\r\n?", "\n", v) for v in want]
        assert got == want


@FUZZ
@given(rows=st.lists(st.lists(st.text(alphabet='ab1 "钛=', max_size=8), min_size=2, max_size=2), min_size=1,
                     max_size=15))
def test_broken_csv_loses_no_line(tmp_path_factory, rows):
    """A CSV written by hand, stray quotes and all: each line is a row that comes back or is rejected."""
    path = tmp_path_factory.mktemp("fuzz") / "hand.csv"
    path.write_text("id,title,note\n" + "".join(f"R{i},{a},{b}\n" for i, (a, b) in enumerate(rows, 1)),
                    encoding="utf-8")
    _returned_or_rejected(path, len(rows))


@FUZZ
@given(rows=st.lists(st.one_of(CELL.map(lambda v: {"id": "?", "title": v}), st.binary(max_size=20),
                               st.sampled_from(["[1]", "{", "null", '{"id": 1'])), min_size=1, max_size=10))
def test_jsonl_loses_no_line(tmp_path_factory, rows):
    """Objects, broken JSON, stray bytes: each line comes back or is rejected under its line number."""
    path = tmp_path_factory.mktemp("fuzz") / "rows.jsonl"
    lines = []
    for i, row in enumerate(rows, 1):
        if isinstance(row, dict):
            lines.append(json.dumps({**row, "id": f"R{i}"}, ensure_ascii=False).encode())
        else:
            data = row if isinstance(row, bytes) else row.encode()
            lines.append(b"x" + data.replace(b"\n", b" ").replace(b"\r", b" "))  # never blank, never an object
    path.write_bytes(b"\n".join(lines) + b"\n")
    _returned_or_rejected(path, len(rows))


# No '=': openpyxl stores such text as a formula with no saved value, which reads as blank (README, "Limits").
XLSX_CELL = st.one_of(st.none(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                      st.booleans(), st.text(alphabet=st.sampled_from(list("ab 1,\"'+-钛合金")), max_size=10))


@FUZZ
@given(rows=st.lists(st.lists(XLSX_CELL, min_size=0, max_size=4), min_size=1, max_size=10))
def test_xlsx_loses_no_row(tmp_path_factory, rows):
    """Sheet rows of any cell type, wider than the header or blank: each comes back, is rejected, or is blank."""
    path = tmp_path_factory.mktemp("fuzz") / "rows.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["id", "title"])
    for i, cells in enumerate(rows, 1):
        wb.active.append([f"R{i}", *cells] if i % 3 else cells)  # every third row may be blank or lack its id
    wb.save(path)
    raw, rejects = read_table(path)
    returned, rejected = set(raw["_row"]), {r.row for r in rejects}
    blank = {i for i, cells in enumerate(rows, 1)
             if i % 3 == 0 and all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)}
    assert returned | rejected | blank == set(range(1, len(rows) + 1))
    assert not (returned & rejected) and not (returned & blank)
