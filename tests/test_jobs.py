"""The matching job as a library call: match_file in every mode, and match_records sharing its direction logic."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import read_jsonl, write_jsonl

from qcy_match import (
    EngineConfig,
    JobChunk,
    JobResult,
    MatchEngine,
    RejectedRowsError,
    UsageError,
    match_file,
    match_records,
)
from qcy_match.match.jobs import orient
from qcy_match.match.stream import checkpoint_path

LSA = EngineConfig(encoder="lsa")




@pytest.fixture(scope="module")
def index_dir(tmp_path_factory, achievements) -> Path:
    out = tmp_path_factory.mktemp("jobs") / "idx"
    MatchEngine(LSA).index(achievements).save(out)
    return out


def test_orient_names_the_searched_side():
    assert orient("needs", "A", "N") == ("A", "achievements", "N")
    assert orient("achievements", "A", "N") == ("N", "needs", "A")
    with pytest.raises(UsageError, match="direction"):
        orient("both", "A", "N")


@pytest.mark.parametrize("direction", ["needs", "achievements"])
def test_index_and_two_files_give_the_same_table(tmp_path, index_dir, achievements_path, needs_path, direction):
    a = match_file(needs_path, tmp_path / "a.jsonl", index=index_dir, direction=direction, k=3)
    b = match_file(needs_path, tmp_path / "b.jsonl", achievements=achievements_path, config=LSA,
                   direction=direction, k=3)
    pd.testing.assert_frame_equal(read_jsonl(a.out), read_jsonl(b.out))
    assert a.streamed is (direction == "needs") and not b.streamed
    n_queries = 8 if direction == "needs" else 24
    for res in (a, b):
        assert isinstance(res, JobResult)
        assert (res.queries, res.valid, res.rows) == (n_queries, n_queries, 3 * n_queries)
        assert res.corpus == 32 - n_queries and res.searched == ("achievements" if direction == "needs" else "needs")
        assert res.rejected == [] and res.rejects_path == res.out.with_name(res.out.stem + ".rejected.csv")
        assert res.rejects_path.is_file() and res.engine is not None and res.engine.side_ == res.searched
    first = "need_id" if direction == "needs" else "achievement_id"
    assert read_jsonl(a.out).columns[0] == first


def test_job_equals_match_records(tmp_path, achievements, needs, achievements_path, needs_path):
    for direction in ("needs", "achievements"):
        matches, engine = match_records(achievements, needs, direction=direction, k=2, config=LSA)
        queries = needs if direction == "needs" else achievements
        res = match_file(needs_path, tmp_path / f"{direction}.jsonl", achievements=achievements_path, config=LSA,
                         direction=direction, k=2)
        expected = matches.to_frame(queries, engine.records_)
        got = read_jsonl(res.out)
        assert got.iloc[:, :4].values.tolist() == expected.iloc[:, :4].astype(object).values.tolist()


def test_a_loaded_engine_is_searched_as_it_is(tmp_path, lsa_engine, needs_path):
    chunks: list[JobChunk] = []
    res = match_file(needs_path, tmp_path / "m.csv", index=lsa_engine, k=2, chunk_rows=3, on_chunk=chunks.append)
    assert res.engine is lsa_engine and res.streamed
    assert [len(c.queries) for c in chunks] == [3, 3, 2]
    assert sum(len(c.table) for c in chunks) == res.rows == 16
    assert chunks[0].matches.query_ids == chunks[0].queries["id"].tolist()


def test_xlsx_is_written_whole_and_empty_output_keeps_its_header(tmp_path, index_dir, needs_path):
    res = match_file(needs_path, tmp_path / "m.xlsx", index=index_dir, k=2, chunk_rows=3)
    assert not res.streamed and len(pd.read_excel(res.out)) == res.rows == 16
    empty = match_file(needs_path, tmp_path / "none.csv", index=index_dir, direction="achievements",
                       filters=["industry=A01"])
    assert empty.rows == 0
    assert pd.read_csv(empty.out, encoding="utf-8-sig").columns.tolist() == ["achievement_id", "need_id", "rank",
                                                                             "score", "confidence"]


def test_streamed_resume_equals_an_uninterrupted_run(tmp_path, index_dir, needs):
    rows = [dict(r, id=f"{r['id']}-{i}") for i in range(4) for r in needs[["id", "title", "description"]]
            .to_dict(orient="records")]
    rows.insert(5, {"id": "N01-0", "title": "重复编号"})  # a duplicate id across chunks, rejected in every run
    path = write_jsonl(tmp_path / "needs.jsonl", rows)
    ref = match_file(path, tmp_path / "ref.csv", index=index_dir, k=2, chunk_rows=5)

    class Killed(Exception):
        pass

    def kill_after_two(chunk: JobChunk) -> None:
        seen.append(chunk)
        if len(seen) == 3:  # the third chunk is appended but not checkpointed: a resume must drop it
            raise Killed

    seen: list[JobChunk] = []
    out = tmp_path / "out.csv"
    with pytest.raises(Killed):
        match_file(path, out, index=index_dir, k=2, chunk_rows=5, on_chunk=kill_after_two)
    assert checkpoint_path(out).is_file()
    assert json.loads(checkpoint_path(out).read_text())["chunks_done"] == 2
    res = match_file(path, out, index=index_dir, k=2, chunk_rows=5, resume=True)
    assert out.read_bytes() == ref.out.read_bytes()
    # The two chunks done hold 5 + 4 usable needs (the duplicate is in the second).
    assert res.skipped_chunks == 2 and res.queries == ref.queries - 9 and res.valid == ref.valid == 32
    assert res.rejected == ref.rejected and [(r.row, r.field) for r in res.rejected] == [(6, "id")]
    assert not checkpoint_path(out).exists()
    with pytest.raises(UsageError, match="resume"):
        match_file(path, tmp_path / "x.xlsx", index=index_dir, resume=True)


BAD = [{"id": "B1", "title": "钛合金锻件热处理"}, {"id": "B2", "title": ""}, {"id": "B1", "title": "重复"}]


@pytest.mark.parametrize("source", ["index", "files"])
def test_strict_fails_before_any_output(tmp_path, index_dir, achievements_path, source):
    needs = write_jsonl(tmp_path / "bad.jsonl", BAD)
    given = {"index": index_dir} if source == "index" else {"achievements": achievements_path, "config": LSA}
    out = tmp_path / "m.csv"
    with pytest.raises(RejectedRowsError, match="2 rows rejected"):
        match_file(needs, out, strict=True, rejects=tmp_path / "r" / "bad.csv", **given)
    assert not out.exists() and not checkpoint_path(out).exists()
    assert len(pd.read_csv(tmp_path / "r" / "bad.csv")) == 2
    res = match_file(needs, out, **given)
    assert res.valid == 1 and [r.row for r in res.rejected] == [2, 3]


def test_refusals(tmp_path, achievements_path, needs_path, needs):
    needs_index = MatchEngine(LSA).index(needs, side="needs")
    with pytest.raises(UsageError, match="index of needs"):
        match_file(needs_path, tmp_path / "m.csv", index=needs_index)
    with pytest.raises(UsageError, match="an achievements file"):
        match_file(needs_path, tmp_path / "m.csv")
    with pytest.raises(UsageError, match="not both"):
        match_file(needs_path, tmp_path / "m.csv", index=needs_index, achievements=achievements_path)
    with pytest.raises(UsageError, match="at least 1"):
        match_file(needs_path, tmp_path / "m.csv", achievements=achievements_path, k=0)
    empty = write_jsonl(tmp_path / "empty.jsonl", [{"id": "1", "title": ""}])
    with pytest.raises(RejectedRowsError, match="no usable rows"):
        match_file(empty, tmp_path / "m.csv", achievements=achievements_path, config=LSA)
    assert not (tmp_path / "m.csv").exists()
