"""Issue 13, command line and jobs: no output path, malformed file or concurrent writer may lose data, and every
error is one line with a documented exit status.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import write_jsonl

from qcy_match import EngineConfig, InputError, MatchEngine, OutputError, match_file
from qcy_match.cli import main
from qcy_match.ingest.records import from_any, prepare, text_of
from qcy_match.match.stream import checkpoint_path

LSA = ["--encoder", "lsa"]
ROOT = Path(__file__).parent.parent


def run(capsys, *args: str | Path) -> tuple[int, str]:
    """Run the CLI in-process: its status and stderr, which must be a single 'qcy-match: error' line on failure."""
    rc = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if rc:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("qcy-match: "), err
    return rc, err



@pytest.fixture(scope="module")
def index_dir(tmp_path_factory, achievements_path) -> Path:
    out = tmp_path_factory.mktemp("hardening") / "idx"
    assert main(["index", "--achievements", str(achievements_path), "--out", str(out), *LSA]) == 0
    return out


@pytest.fixture
def files(tmp_path, achievements_path, needs_path) -> dict[str, Path]:
    """Copies of the fixtures in tmp_path, free to be clobbered (if the CLI failed to refuse)."""
    return {"a": Path(shutil.copy(achievements_path, tmp_path / "a.jsonl")),
            "n": Path(shutil.copy(needs_path, tmp_path / "n.jsonl"))}


def snapshot(*paths: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in paths}


# ---- 2. an output never replaces an input ---------------------------------------------------------------------
def clobber_cases(tmp: Path, files: dict[str, Path], idx: Path) -> list[tuple[list[str | Path], Path]]:
    """(arguments, the input they would destroy) for every command that writes."""
    n, a = files["n"], files["a"]
    csv_needs = tmp / "m.rejected.csv"  # a needs file named like the rejects report of --out m.csv
    pd.read_json(n, lines=True)[["id", "title", "description"]].to_csv(csv_needs, index=False)
    ckpt_needs = Path(shutil.copy(n, tmp / "s.csv.progress.json"))  # named like the checkpoint of --out s.csv
    (tmp / "link.jsonl").symlink_to(n)
    os.link(n, tmp / "hard.jsonl")
    corpus = tmp / "corpus"
    corpus.mkdir()
    shutil.copy(a, corpus / "achievements.jsonl")
    shutil.copy(n, corpus / "needs.jsonl")
    m = ["match", "--index", idx, "--needs"]
    return [
        ([*m, n, "--out", n], n),
        (["match", "--achievements", a, "--needs", n, "--out", n, *LSA], n),
        (["match", "--achievements", a, "--needs", n, "--out", a, *LSA], a),
        ([*m, csv_needs, "--out", tmp / "m.csv"], csv_needs),
        ([*m, ckpt_needs, "--out", tmp / "s.csv"], ckpt_needs),
        ([*m, n, "--out", tmp / "link.jsonl"], n),
        ([*m, n, "--out", tmp / "hard.jsonl"], n),
        ([*m, n, "--out", tmp / "x.csv", "--rejects", n], n),
        ([*m, n, "--out", idx / "m.csv"], idx / "manifest.json"),
        (["index", "--achievements", a, "--out", a, *LSA], a),
        (["index", "--achievements", a, "--out", tmp / "i", "--rejects", a, *LSA], a),
        (["index", "--index", idx, "--update", n, "--rejects", n], n),
        (["index", "--index", idx, "--update", n, "--rejects", idx / "records.parquet"], idx / "records.parquet"),
        (["classify", "--in", n, "--out", n], n),
        (["classify", "--in", n, "--out", tmp / "c.csv", "--rejects", n], n),
        (["report", "--achievements", a, "--needs", n, "--out", tmp / "r", "--rejects", n, *LSA], n),
        (["report", "--achievements", a, "--needs", tmp / "r2" / "tables" / "n.jsonl", "--out", tmp / "r2", *LSA],
         tmp / "r2" / "tables" / "n.jsonl"),
        (["demo", "--corpus", corpus, "--out", corpus / "needs.jsonl", *LSA], corpus / "needs.jsonl"),
    ]


def test_no_command_writes_over_its_input(tmp_path, capsys, files, index_dir):
    idx = Path(shutil.copytree(index_dir, tmp_path / "idx"))
    (tmp_path / "r2" / "tables").mkdir(parents=True)
    shutil.copy(files["n"], tmp_path / "r2" / "tables" / "n.jsonl")
    cases = clobber_cases(tmp_path, files, idx)
    before = snapshot(*[p for p in tmp_path.rglob("*") if p.is_file()])
    for args, victim in cases:
        rc, err = run(capsys, *args)
        assert rc == 4, (args, err)
        assert str(victim.name) in err or victim.parent.name in err, (args, err)
        after = snapshot(*[p for p in tmp_path.rglob("*") if p.is_file()])
        assert after == before, f"{args} changed {set(after.items()) ^ set(before.items())}"
    assert len(MatchEngine.load(idx)) == 24


def test_the_job_refuses_outputs_over_inputs(tmp_path, files, index_dir, lsa_engine):
    n = files["n"]
    for out, given in [(n, {"index": index_dir}), (n, {"index": lsa_engine}), (n, {"achievements": files["a"]}),
                       (index_dir / "m.jsonl", {"index": index_dir})]:
        with pytest.raises(OutputError):
            match_file(n, out, config=EngineConfig(encoder="lsa"), **given)
    with pytest.raises(OutputError, match="the output"):
        match_file(n, tmp_path / "m.csv", index=index_dir, rejects=tmp_path / "m.csv")
    assert n.read_bytes() == files["n"].read_bytes() and not (tmp_path / "m.csv").exists()


@pytest.mark.parametrize("out", [".", "sub", "n.jsonl/m.csv"])
def test_an_output_that_cannot_be_a_file(tmp_path, capsys, files, index_dir, out, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    rc, err = run(capsys, "match", "--index", index_dir, "--needs", files["n"], "--out", out)
    assert rc == 4 and ("is a directory" in err or "is a file" in err), err


def test_report_out_that_is_a_file(tmp_path, capsys, files):
    rc, err = run(capsys, "report", "--achievements", files["a"], "--needs", files["n"], "--out", files["n"], *LSA)
    assert rc == 4 and "is a file, not a directory" in err
    assert not (tmp_path / "n.rejected.csv").exists()


# ---- unreadable input ------------------------------------------------------------------------------------------
def test_a_directory_as_input(tmp_path, capsys, index_dir, files):
    rc, err = run(capsys, "match", "--index", index_dir, "--needs", tmp_path, "--out", tmp_path / "m.csv")
    assert rc == 3 and "is a directory" in err
    rc, err = run(capsys, "index", "--achievements", tmp_path, "--out", tmp_path / "i", *LSA)
    assert rc == 3 and "is a directory" in err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_a_file_without_read_permission(tmp_path, capsys, index_dir, files):
    files["n"].chmod(0)
    rc, err = run(capsys, "match", "--index", index_dir, "--needs", files["n"], "--out", tmp_path / "m.csv")
    assert rc == 3 and "cannot be read" in err


# ---- 4. two processes updating one index ----------------------------------------------------------------------
def test_two_cli_updates_at_once_both_land(tmp_path, index_dir):
    idx = Path(shutil.copytree(index_dir, tmp_path / "idx"))
    updates = [write_jsonl(tmp_path / f"u{i}.jsonl", [{"id": f"NEW-{i}-{j}", "title": f"新型钛合金锻件工艺{i}{j}"}
                                                       for j in range(3)]) for i in range(2)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    procs = [subprocess.Popen([sys.executable, "-m", "qcy_match.cli", "index", "--index", str(idx), "--update",
                               str(u), "--rejects", str(tmp_path / f"r{i}.csv")], env=env, stderr=subprocess.PIPE,
                              text=True) for i, u in enumerate(updates)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    ids = set(MatchEngine.load(idx).records_["id"])
    assert {f"NEW-{i}-{j}" for i in range(2) for j in range(3)} <= ids and len(ids) == 24 + 6


def test_a_strict_update_saves_nothing(tmp_path, capsys, index_dir):
    idx = Path(shutil.copytree(index_dir, tmp_path / "idx"))
    before = (idx / "manifest.json").read_bytes()
    bad = write_jsonl(tmp_path / "u.jsonl", [{"id": "NEW-1", "title": "钛合金"}, {"id": "", "title": "无编号"}])
    rc, err = run(capsys, "index", "--index", idx, "--update", bad, "--strict")
    assert rc == 3 and "--strict" in err
    assert (idx / "manifest.json").read_bytes() == before


# ---- 5. resume against the same index only ---------------------------------------------------------------------
class Killed(Exception):
    pass


def kill_after(n: int):
    seen = []

    def on_chunk(_chunk) -> None:
        seen.append(1)
        if len(seen) == n:
            raise Killed

    return on_chunk


def many_needs(path: Path, needs: pd.DataFrame, copies: int) -> Path:
    rows = [dict(r, id=f"{r['id']}-{i}") for i in range(copies)
            for r in needs[["id", "title", "description"]].to_dict(orient="records")]
    return write_jsonl(path, rows)


def test_resume_refuses_a_changed_index(tmp_path, capsys, index_dir, needs):
    idx = Path(shutil.copytree(index_dir, tmp_path / "idx"))
    path = many_needs(tmp_path / "needs.jsonl", needs, 4)
    out = tmp_path / "m.csv"
    with pytest.raises(Killed) as info:
        match_file(path, out, index=idx, k=2, chunk_rows=5, on_chunk=kill_after(3))
    assert any("is kept" in note and "resume" in note for note in info.value.__notes__)
    assert checkpoint_path(out).is_file()
    MatchEngine.update_saved(idx, delete=["A01"])
    with pytest.raises(InputError, match="index changed"):
        match_file(path, out, index=idx, k=2, chunk_rows=5, resume=True)
    rc, err = run(capsys, "match", "--index", idx, "--needs", path, "--out", out, "--top-k", "2", "--chunk-rows", "5",
                  "--resume")
    assert rc == 3 and "index changed" in err and "without --resume" in err
    rc, _ = run(capsys, "match", "--index", idx, "--needs", path, "--out", out, "--top-k", "2", "--chunk-rows", "5")
    assert rc == 0 and "A01" not in set(pd.read_csv(out)["achievement_id"])


def test_resume_refuses_a_changed_engine(tmp_path, achievements, needs):
    engine = MatchEngine(EngineConfig(encoder="lsa")).index(achievements)
    path = many_needs(tmp_path / "needs.jsonl", needs, 3)
    out = tmp_path / "m.jsonl"
    with pytest.raises(Killed):
        match_file(path, out, index=engine, chunk_rows=4, on_chunk=kill_after(2))
    same = MatchEngine(EngineConfig(encoder="lsa")).index(achievements)  # an equal engine may resume
    res = match_file(path, out, index=same, chunk_rows=4, resume=True)
    assert res.skipped_chunks == 1 and not checkpoint_path(out).exists()
    with pytest.raises(Killed):
        match_file(path, out, index=engine, chunk_rows=4, on_chunk=kill_after(2))
    engine.delete(["A02"])
    with pytest.raises(InputError, match="index changed"):
        match_file(path, out, index=engine, chunk_rows=4, resume=True)


def test_an_interrupted_cli_run_says_the_checkpoint_is_kept(tmp_path, capsys, index_dir, needs, monkeypatch):
    from qcy_match.match import jobs

    path = many_needs(tmp_path / "needs.jsonl", needs, 3)
    out = tmp_path / "m.csv"
    real, calls = jobs.write_table, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs, "write_table", interrupted)
    rc, err = run(capsys, "match", "--index", index_dir, "--needs", path, "--out", out, "--chunk-rows", "5")
    assert rc == 130 and "interrupted" in err and "m.csv.progress.json is kept" in err and "--resume" in err
    monkeypatch.setattr(jobs, "write_table", real)
    rc, _ = run(capsys, "match", "--index", index_dir, "--needs", path, "--out", out, "--chunk-rows", "5", "--resume")
    assert rc == 0 and not checkpoint_path(out).exists()


@pytest.mark.parametrize("content", ["{not json", "[]", '{"identity": {}, "chunks_done": "2", "bytes": 0}',
                                     '{"identity": [], "chunks_done": 1, "bytes": 0}',
                                     '{"identity": {}, "chunks_done": -1, "bytes": 0}', "\xff\xfe"])
def test_a_damaged_checkpoint_is_refused_in_one_line(tmp_path, capsys, index_dir, files, content):
    out = tmp_path / "m.csv"
    checkpoint_path(out).write_text(content, encoding="latin-1")
    rc, err = run(capsys, "match", "--index", index_dir, "--needs", files["n"], "--out", out, "--resume")
    assert rc == 3 and "progress.json" in err and "without --resume" in err


# ---- filters are checked before anything is written -----------------------------------------------------------
@pytest.mark.parametrize("source", ["index", "achievements"])
def test_an_unknown_filter_key_writes_and_deletes_nothing(tmp_path, capsys, index_dir, files, source):
    out = tmp_path / "m.csv"
    out.write_text("earlier results\n", encoding="utf-8")
    given = ["--index", index_dir] if source == "index" else ["--achievements", files["a"], *LSA]
    rc, err = run(capsys, "match", *given, "--needs", files["n"], "--out", out, "--filter", "colour=red")
    assert rc == 2 and "unknown filter 'colour'" in err
    assert out.read_text(encoding="utf-8") == "earlier results\n"
    assert not checkpoint_path(out).exists() and not (tmp_path / "m.rejected.csv").exists()


# ---- malformed manifest values -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("key", "value"), [("fusion", "xyz"), ("dense_text", "xyz"), ("query_dense_text", "xyz")])
def test_a_bad_manifest_setting_fails_the_load_in_one_line(tmp_path, capsys, index_dir, files, key, value):
    idx = Path(shutil.copytree(index_dir, tmp_path / "idx"))
    manifest = json.loads((idx / "manifest.json").read_text(encoding="utf-8"))
    manifest["config"][key] = value
    (idx / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    rc, err = run(capsys, "match", "--index", idx, "--needs", files["n"], "--out", tmp_path / "m.csv")
    assert rc == 3 and value in err


def test_huge_candidates_in_a_manifest_is_capped_at_the_index_size(tmp_path, capsys, index_dir, files):
    idx = Path(shutil.copytree(index_dir, tmp_path / "idx"))
    manifest = json.loads((idx / "manifest.json").read_text(encoding="utf-8"))
    manifest["config"]["candidates"] = 2 ** 40
    (idx / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    rc, _ = run(capsys, "match", "--index", idx, "--needs", files["n"], "--out", tmp_path / "big.csv")
    assert rc == 0
    assert run(capsys, "match", "--index", index_dir, "--needs", files["n"], "--out", tmp_path / "ref.csv")[0] == 0
    assert (tmp_path / "big.csv").read_bytes() == (tmp_path / "ref.csv").read_bytes()


# ---- unexpected errors ---------------------------------------------------------------------------------------------
def test_an_unexpected_error_is_one_line_and_v_shows_the_traceback(tmp_path, capsys, files, monkeypatch):
    import qcy_match.cli as cli

    def broken(args):
        raise RuntimeError("something nobody foresaw")

    monkeypatch.setattr(cli, "cmd_match", broken)
    args = ["match", "--achievements", str(files["a"]), "--needs", str(files["n"]), "--out", str(tmp_path / "m.csv")]
    rc, err = run(capsys, *args)
    assert rc == 1 and "RuntimeError: something nobody foresaw (run with -v for the traceback)" in err
    assert main([*args, "-v"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("qcy-match: error: RuntimeError")


# ---- ids are normalised like text --------------------------------------------------------------------------------
def test_ids_differing_only_in_width_or_invisible_characters_are_duplicates():
    raw = pd.DataFrame({"id": ["１２３", "123\u200b", "123 ", " A\ufeff7", "A7"],
                        "title": ["钛合金锻件", "锂电池", "乳制品", "光伏", "储能"]})
    prepared = prepare(raw, "t.csv")
    assert prepared.records["id"].tolist() == ["123", "A7"]
    assert [(r.row, r.field, r.reason, r.value) for r in prepared.rejected] == [
        (2, "id", "duplicate id (first used in row 1)", "123\u200b"),
        (3, "id", "duplicate id (first used in row 1)", "123"),
        (5, "id", "duplicate id (first used in row 4)", "A7")]


def test_delete_ids_are_normalised_too(tmp_path, capsys, index_dir):
    idx = Path(shutil.copytree(index_dir, tmp_path / "idx"))
    rc, err = run(capsys, "index", "--index", idx, "--delete", "Ａ０１,A02\u200b")
    assert rc == 0 and "deleted 2" in err
    assert not {"A01", "A02"} & set(MatchEngine.load(idx).records_["id"])


# ---- --sheet -------------------------------------------------------------------------------------------------------
@pytest.fixture
def workbook(tmp_path, needs) -> Path:
    path = tmp_path / "needs.xlsx"
    with pd.ExcelWriter(path) as book:
        pd.DataFrame({"说明": ["企业技术需求汇总"]}).to_excel(book, sheet_name="说明", index=False)
        needs[["id", "title", "description"]].to_excel(book, sheet_name="需求", index=False)
    return path


def test_sheet_selects_the_worksheet_in_every_command(tmp_path, capsys, index_dir, files, workbook):
    rc, err = run(capsys, "match", "--index", index_dir, "--needs", workbook, "--out", tmp_path / "m.csv")
    assert rc == 3 and "sheet" in err
    for sheet, name in (("需求", "a.csv"), ("1", "b.csv")):
        rc, _ = run(capsys, "match", "--index", index_dir, "--needs", workbook, "--out", tmp_path / name,
                    "--sheet", sheet)
        assert rc == 0 and len(pd.read_csv(tmp_path / name)) == 80
    # One --sheet for a workbook of needs and a JSONL file of achievements: the JSONL file ignores it.
    rc, _ = run(capsys, "match", "--achievements", files["a"], "--needs", workbook, "--out", tmp_path / "c.jsonl",
                "--sheet", "需求", *LSA)
    assert rc == 0
    rc, _ = run(capsys, "index", "--needs", workbook, "--out", tmp_path / "nidx", "--sheet", "需求", *LSA)
    assert rc == 0 and len(MatchEngine.load(tmp_path / "nidx")) == 8
    rc, _ = run(capsys, "classify", "--in", workbook, "--out", tmp_path / "k.csv", "--sheet", "需求")
    assert rc == 0 and len(pd.read_csv(tmp_path / "k.csv")) == 8
    idx = Path(shutil.copytree(index_dir, tmp_path / "idx"))
    rc, err = run(capsys, "index", "--index", idx, "--update", workbook, "--sheet", "需求")
    assert rc == 0 and "added 8" in err
    rc, err = run(capsys, "match", "--index", index_dir, "--needs", workbook, "--out", tmp_path / "d.csv",
                  "--sheet", "无此表")
    assert rc == 3 and "无此表" in err


# ---- from_any: a prepared frame that gained rows -----------------------------------------------------------------
def test_from_any_validates_a_prepared_frame_with_missing_keywords_again():
    prepared = prepare(pd.DataFrame([{"id": "1", "title": "钛合金", "keywords": "锻件 热处理"}])).records
    grown = prepared.reindex(range(2))
    grown.loc[1, ["id", "title"]] = ["2", "锂电池"]
    records, rejected = from_any(grown)
    assert records["keywords"].tolist() == [["锻件", "热处理"], []] and rejected == []
    assert text_of(records) == ["钛合金 锻件 热处理", "锂电池"]
    mixed = [{"id": "1", "title": "钛合金", "keywords": ["锻件"]}, {"id": "2", "title": "锂电池"}]
    assert text_of(from_any(mixed)[0]) == ["钛合金 锻件", "锂电池"]
