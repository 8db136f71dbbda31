"""Fuzzed inputs: every reader either returns rows plus rejections or raises InputError naming the file."""

from __future__ import annotations

import json
import logging
import os

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qcy_match import EngineConfig, MatchEngine
from qcy_match.errors import InputError
from qcy_match.ingest.records import load_records
from qcy_match.ingest.tables import read_table
from qcy_match.output.tables import write_table

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
