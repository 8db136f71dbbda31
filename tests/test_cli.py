"""The qcy-match command line, in-process through cli.main and once through the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import read_jsonl, write_jsonl

from qcy_match.cli import main

LSA = ["--encoder", "lsa"]
SCRIPT = Path(sys.executable).with_name("qcy-match")
# Hand-derived from tests/data/achievements.jsonl: C39 or C27 achievements in 关中 (西安, 宝鸡, 咸阳).
IC_OR_PHARMA_GUANZHONG = {"A01", "A02", "A03", "A04", "A16", "A17", "A19"}


def run(capsys, *args: str | Path) -> tuple[int, str, str]:
    """Run the CLI in-process; an exception escaping main() fails the test (it would be a traceback)."""
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def assert_one_line_error(rc: int, err: str, expected_rc: int, *fragments: str) -> None:
    assert rc == expected_rc, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("qcy-match: error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])




def plain_copy(src: Path, dst: Path) -> Path:
    """The fixture with only id, title and description per row."""
    rows = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines()]
    return write_jsonl(dst, [{k: r[k] for k in ("id", "title", "description")} for r in rows])


def check_ranked(df: pd.DataFrame, query: str, result: str, k: int) -> None:
    """Per query: ranks 1..n (n <= k), scores non-increasing, no repeated result."""
    for _, group in df.groupby(query, sort=False):
        assert group["rank"].tolist() == list(range(1, len(group) + 1))
        assert len(group) <= k
        assert group["score"].is_monotonic_decreasing
        assert group[result].is_unique


@pytest.fixture(scope="module")
def lsa_index(tmp_path_factory, achievements_path) -> Path:
    out = tmp_path_factory.mktemp("cli") / "idx"
    assert main(["index", "--achievements", str(achievements_path), "--out", str(out), *LSA]) == 0
    return out


# ---- index and match -------------------------------------------------------------------------------------------
def test_index_writes_directory_and_reject_report(tmp_path, capsys, achievements_path):
    out = tmp_path / "idx"
    rc, _, err = run(capsys, "index", "--achievements", achievements_path, "--out", out, *LSA)
    assert rc == 0
    assert (out / "manifest.json").is_file()
    assert "indexed 24 achievements" in err
    report = tmp_path / "idx.rejected.csv"  # beside the index directory
    assert report.is_file()
    assert pd.read_csv(report, encoding="utf-8-sig").empty


def test_match_with_index(tmp_path, capsys, lsa_index, needs_path, needs):
    out = tmp_path / "matches.jsonl"
    rc, _, err = run(capsys, "match", "--index", lsa_index, "--needs", needs_path, "--out", out, "--top-k", "3")
    assert rc == 0, err
    df = read_jsonl(out)
    assert list(df.columns[:4]) == ["need_id", "achievement_id", "rank", "score"]
    for col in ("shared_keywords", "industry_agreement", "region_agreement", "bm25_score", "bm25_rank",
                "dense_score", "dense_rank", "need_title", "achievement_title", "achievement_industry",
                "achievement_region", "achievement_maturity", "achievement_transfer_mode", "achievement_owner",
                "need_company"):
        assert col in df.columns, col
    assert len(df) == 8 * 3
    assert df["need_id"].unique().tolist() == needs["id"].tolist()  # input order kept
    check_ranked(df, "need_id", "achievement_id", 3)
    top = df[df["rank"] == 1].set_index("need_id")
    assert top.loc["N01", "achievement_id"] == "A01"
    assert top.loc["N01", "achievement_owner"] == "西安电子科技大学"
    assert top.loc["N01", "need_company"] == "西安某半导体公司"
    assert top.loc["N01", "industry_agreement"] == "小类"
    assert (tmp_path / "matches.rejected.csv").is_file()


def test_match_with_index_equals_match_on_the_fly(tmp_path, capsys, lsa_index, achievements_path, needs_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert run(capsys, "match", "--index", lsa_index, "--needs", needs_path, "--out", a)[0] == 0
    assert run(capsys, "match", "--achievements", achievements_path, "--needs", needs_path, "--out", b, *LSA)[0] == 0
    pd.testing.assert_frame_equal(read_jsonl(a), read_jsonl(b))


@pytest.mark.parametrize("source", ["files", "index"])
def test_direction_achievements(tmp_path, capsys, lsa_index, achievements_path, needs_path, source):
    out = tmp_path / "rev.jsonl"
    src = ["--index", lsa_index] if source == "index" else ["--achievements", achievements_path, *LSA]
    rc, _, err = run(capsys, "match", *src, "--needs", needs_path, "--out", out, "--direction", "achievements",
                     "--top-k", "2")
    assert rc == 0, err
    df = read_jsonl(out)
    assert list(df.columns[:4]) == ["achievement_id", "need_id", "rank", "score"]
    assert df["achievement_id"].nunique() == 24 and len(df) == 48
    assert set(df["need_id"]) <= {f"N0{i}" for i in range(1, 9)}
    check_ranked(df, "achievement_id", "need_id", 2)
    top = df[df["rank"] == 1].set_index("achievement_id")["need_id"]
    assert top["A11"] == "N03" and top["A21"] == "N05" and top["A01"] == "N01"
    assert "achievement_owner" in df.columns and "need_company" in df.columns


def test_index_of_needs_with_default_direction_is_an_error(tmp_path, capsys, needs_path):
    idx = tmp_path / "needs_idx"
    assert run(capsys, "index", "--needs", needs_path, "--out", idx, *LSA)[0] == 0
    out = tmp_path / "m.jsonl"
    rc, _, err = run(capsys, "match", "--index", idx, "--needs", needs_path, "--out", out)
    assert rc != 0
    assert "qcy-match: error:" in err


def test_filters(tmp_path, capsys, lsa_index, needs_path):
    out = tmp_path / "f.jsonl"
    rc, _, err = run(capsys, "match", "--index", lsa_index, "--needs", needs_path, "--out", out, "--top-k", "10",
                     "--filter", "industry=39,C27", "--filter", "region=关中")
    assert rc == 0, err
    df = read_jsonl(out)
    assert df["need_id"].nunique() == 8
    for _, group in df.groupby("need_id"):
        assert set(group["achievement_id"]) == IC_OR_PHARMA_GUANZHONG  # 7 kept, fewer than k: all of them
    assert df["achievement_industry"].str.match(r"C39|C27").all()


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_csv_and_xlsx_outputs(tmp_path, capsys, lsa_index, needs_path, fmt):
    ref, out = tmp_path / "ref.jsonl", tmp_path / f"m.{fmt}"
    assert run(capsys, "match", "--index", lsa_index, "--needs", needs_path, "--out", ref, "--top-k", "4")[0] == 0
    assert run(capsys, "match", "--index", lsa_index, "--needs", needs_path, "--out", out, "--top-k", "4")[0] == 0
    if fmt == "csv":
        assert out.read_bytes().startswith(b"\xef\xbb\xbf")
        df = pd.read_csv(out, encoding="utf-8-sig", dtype={"need_id": str, "achievement_id": str})
    else:
        df = pd.read_excel(out, dtype={"need_id": str, "achievement_id": str})
    expected = read_jsonl(ref)
    assert df.columns.tolist() == expected.columns.tolist()
    assert df[["need_id", "achievement_id", "rank"]].values.tolist() == \
        expected[["need_id", "achievement_id", "rank"]].values.tolist()
    assert df["score"].round(6).tolist() == expected["score"].round(6).tolist()
    assert df["achievement_owner"].tolist() == expected["achievement_owner"].tolist()


def test_csv_output_escapes_formulas_from_input(tmp_path, capsys, lsa_index):
    needs = write_jsonl(tmp_path / "n.jsonl", [{"id": "E1", "title": "=HYPERLINK(\"http://x\")钛合金锻件热处理"}])
    out = tmp_path / "m.csv"
    assert run(capsys, "match", "--index", lsa_index, "--needs", needs, "--out", out, "--top-k", "1")[0] == 0
    df = pd.read_csv(out, encoding="utf-8-sig")
    assert df["need_title"].iloc[0].startswith("'=")


def test_no_matches_still_writes_a_header(tmp_path, capsys, lsa_index, needs_path):
    out = tmp_path / "none.csv"
    rc, _, err = run(capsys, "match", "--index", lsa_index, "--needs", needs_path, "--out", out,
                     "--filter", "industry=A01")
    assert rc == 0, err
    df = pd.read_csv(out, encoding="utf-8-sig")
    assert df.empty
    assert df.columns.tolist()[:4] == ["need_id", "achievement_id", "rank", "score"]


# ---- rejected rows ---------------------------------------------------------------------------------------------
BAD_NEEDS = [{"id": "B1", "title": "钛合金锻件热处理"},
             {"id": "B2", "title": ""},
             '{"id": "B3", "title": "坏的JSON"',
             {"id": "B1", "title": "重复编号"},
             {"id": "B5", "title": "锂离子电池", "industry": "C9999"},
             {"id": "B6", "title": "低乳糖液体乳"}]


def test_rejected_rows_report_beside_output(tmp_path, capsys, lsa_index):
    needs = write_jsonl(tmp_path / "bad_needs.jsonl", BAD_NEEDS)
    out = tmp_path / "res" / "matches.jsonl"
    rc, _, err = run(capsys, "match", "--index", lsa_index, "--needs", needs, "--out", out, "--top-k", "2")
    assert rc == 0, err
    assert "4 rejected rows" in err
    assert set(read_jsonl(out)["need_id"]) == {"B1", "B6"}
    report = pd.read_csv(tmp_path / "res" / "matches.rejected.csv", encoding="utf-8-sig")
    assert report.columns.tolist() == ["file", "row", "field", "reason", "value"]
    assert (report["file"] == str(needs)).all()
    got = sorted(zip(report["row"], report["field"], strict=True))
    assert got == [(2, "title"), (3, "<line>"), (4, "id"), (5, "industry")]
    reasons = dict(zip(report["row"], report["reason"], strict=True))
    assert "missing title" in reasons[2] and "invalid JSON" in reasons[3] and "duplicate" in reasons[4]


def test_rejects_option_sets_report_path(tmp_path, capsys, lsa_index):
    needs = write_jsonl(tmp_path / "bad_needs.jsonl", BAD_NEEDS)
    report = tmp_path / "elsewhere" / "bad.csv"
    rc, _, _ = run(capsys, "match", "--index", lsa_index, "--needs", needs, "--out", tmp_path / "m.jsonl",
                   "--rejects", report)
    assert rc == 0
    assert len(pd.read_csv(report, encoding="utf-8-sig")) == 4
    assert not (tmp_path / "m.rejected.csv").exists()


def test_strict_fails_on_rejected_rows(tmp_path, capsys, lsa_index):
    needs = write_jsonl(tmp_path / "bad_needs.jsonl", BAD_NEEDS)
    out = tmp_path / "m.jsonl"
    rc, _, err = run(capsys, "match", "--index", lsa_index, "--needs", needs, "--out", out, "--strict")
    assert_one_line_error(rc, err, 3, "--strict", "4 rows rejected", "row 2 field title")
    assert not out.exists()
    assert (tmp_path / "m.rejected.csv").is_file()  # the report is still there to read


def test_strict_passes_on_clean_input(tmp_path, capsys, lsa_index, needs_path):
    rc, _, err = run(capsys, "match", "--index", lsa_index, "--needs", needs_path, "--out", tmp_path / "m.jsonl",
                     "--strict")
    assert rc == 0, err


def test_strict_index(tmp_path, capsys):
    bad = write_jsonl(tmp_path / "a.jsonl", [{"id": "A", "title": "钛合金"}, {"id": "B", "title": ""}])
    rc, _, err = run(capsys, "index", "--achievements", bad, "--out", tmp_path / "idx", "--strict", *LSA)
    assert_one_line_error(rc, err, 3, "--strict", "1 rows rejected")
    assert not (tmp_path / "idx").exists()


def test_gbk_csv_input(tmp_path, capsys, lsa_index):
    needs = tmp_path / "needs.csv"
    needs.write_bytes("编号,名称,简介,行业代码,地区\nC1,钛合金锻件,热处理工艺,C3240,宝鸡市\n".encode("gbk"))
    out = tmp_path / "m.jsonl"
    rc, _, err = run(capsys, "match", "--index", lsa_index, "--needs", needs, "--out", out, "--top-k", "1")
    assert rc == 0, err
    assert read_jsonl(out)["achievement_id"].tolist() == ["A06"]


# ---- errors ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("extra", "rc", "fragments"), [
    pytest.param(["--filter", "colour=red"], 2, ["unknown filter 'colour'"], id="unknown-filter-key"),
    pytest.param(["--filter", "industry=ZZ99"], 2, ["filter industry", "unknown GB/T 4754-2017 code"],
                 id="unknown-industry"),
    pytest.param(["--filter", "industry"], 2, ["key=value"], id="filter-without-equals"),
    pytest.param(["--filter", "region="], 2, ["no value"], id="filter-without-value"),
    pytest.param(["--top-k", "0"], 2, ["--top-k"], id="top-k-zero"),
])
def test_bad_match_options(tmp_path, capsys, lsa_index, needs_path, extra, rc, fragments):
    out = tmp_path / "m.jsonl"
    got, _, err = run(capsys, "match", "--index", lsa_index, "--needs", needs_path, "--out", out, *extra)
    assert_one_line_error(got, err, rc, *fragments)


def test_bad_paths(tmp_path, capsys, lsa_index, needs_path, achievements_path):
    rc, _, err = run(capsys, "match", "--index", lsa_index, "--needs", tmp_path / "missing.jsonl",
                     "--out", tmp_path / "m.jsonl")
    assert_one_line_error(rc, err, 3, "missing.jsonl", "no such file")
    rc, _, err = run(capsys, "match", "--achievements", tmp_path / "nope.csv", "--needs", needs_path,
                     "--out", tmp_path / "m.jsonl", *LSA)
    assert_one_line_error(rc, err, 3, "nope.csv", "no such file")
    rc, _, err = run(capsys, "match", "--index", tmp_path / "no_index", "--needs", needs_path,
                     "--out", tmp_path / "m.jsonl")
    assert_one_line_error(rc, err, 3, "no such index directory")
    rc, _, err = run(capsys, "match", "--index", lsa_index, "--needs", needs_path, "--out", tmp_path / "m.docx")
    assert_one_line_error(rc, err, 4, "unknown file type '.docx'")
    rc, _, err = run(capsys, "index", "--achievements", tmp_path / "a.pdf", "--out", tmp_path / "i", *LSA)
    assert_one_line_error(rc, err, 3, "unknown file type")
    rc, _, err = run(capsys, "index", "--achievements", achievements_path, "--out", tmp_path / "i", *LSA,
                     "--user-dict", tmp_path / "nodict.txt")
    assert_one_line_error(rc, err, 2, "nodict.txt")


def test_corrupted_index_is_refused(tmp_path, capsys, achievements_path, needs_path):
    idx = tmp_path / "idx"
    assert run(capsys, "index", "--achievements", achievements_path, "--out", idx, *LSA)[0] == 0
    data = bytearray((idx / "vectors.npy").read_bytes())
    data[-5] ^= 0xFF
    (idx / "vectors.npy").write_bytes(bytes(data))
    rc, _, err = run(capsys, "match", "--index", idx, "--needs", needs_path, "--out", tmp_path / "m.jsonl")
    assert_one_line_error(rc, err, 3, "vectors.npy", "SHA-256")


def test_input_without_usable_rows(tmp_path, capsys, lsa_index):
    needs = write_jsonl(tmp_path / "n.jsonl", [{"id": "1", "title": ""}, '{"broken'])
    rc, _, err = run(capsys, "match", "--index", lsa_index, "--needs", needs, "--out", tmp_path / "m.jsonl")
    assert_one_line_error(rc, err, 3, "no usable rows", "2 rejected")


@pytest.mark.parametrize(("extra", "fragment"), [
    (["--dense-weight", "2"], "--dense-weight"),
    (["--encoder", "st"], "--model-path"),
    (["--model-path", "/nowhere"], "--encoder st"),
])
def test_bad_engine_options(tmp_path, capsys, achievements_path, extra, fragment):
    rc, _, err = run(capsys, "index", "--achievements", achievements_path, "--out", tmp_path / "i", *extra)
    assert_one_line_error(rc, err, 2, fragment)


def test_argparse_usage_errors(capsys):
    with pytest.raises(SystemExit) as info:
        main(["match", "--needs", "n.jsonl"])  # no --out, no source
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "index" in capsys.readouterr().out


# ---- the installed console script ------------------------------------------------------------------------------
def _script(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([str(SCRIPT), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=env)


@pytest.mark.skipif(not SCRIPT.exists(), reason="console script not installed beside this interpreter")
def test_console_script_minimal_columns(tmp_path, achievements_path, needs_path):
    a = plain_copy(achievements_path, tmp_path / "A.jsonl")
    n = plain_copy(needs_path, tmp_path / "N.jsonl")
    proc = _script("match", "--achievements", a, "--needs", n, "--top-k", "10", "--out", "OUT.jsonl", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    df = read_jsonl(tmp_path / "OUT.jsonl")
    assert list(df.columns[:4]) == ["need_id", "achievement_id", "rank", "score"]
    assert len(df) == 8 * 10
    check_ranked(df, "need_id", "achievement_id", 10)
    # No industry or region in the input: agreement is unknown, not a false 'none'.
    assert set(df["industry_agreement"]) == {"unknown"} and set(df["region_agreement"]) == {"unknown"}
    assert {"shared_keywords", "bm25_score", "dense_score", "bm25_rank", "dense_rank"} <= set(df.columns)
    top = df[df["rank"] == 1].set_index("need_id")["achievement_id"]
    assert top["N01"] == "A01" and top["N03"] == "A11"
    report = tmp_path / "OUT.rejected.csv"
    assert report.is_file() and pd.read_csv(report, encoding="utf-8-sig").empty


@pytest.mark.skipif(not SCRIPT.exists(), reason="console script not installed beside this interpreter")
def test_console_script_error_has_no_traceback(tmp_path, needs_path):
    (tmp_path / "n.jsonl").write_bytes(needs_path.read_bytes())  # inputs are checked first: this one is fine
    proc = _script("match", "--index", "missing_idx", "--needs", "n.jsonl", "--out", "o.csv", cwd=tmp_path)
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("qcy-match: error:") and "no such index directory" in proc.stderr


def test_demo_strict_writes_the_report_then_fails_in_one_line(capsys, tmp_path):
    corpus = Path(__file__).parent.parent / "corpora"
    (tmp_path / "achievements.jsonl").write_text((corpus / "achievements.jsonl").read_text(encoding="utf-8"),
                                                encoding="utf-8")
    needs = (corpus / "needs.jsonl").read_text(encoding="utf-8").rstrip("\n") + '\n{"id": "x1", "title": ""}\n'
    (tmp_path / "needs.jsonl").write_text(needs, encoding="utf-8")
    rc, _, err = run(capsys, "demo", "--corpus", tmp_path, "--out", tmp_path / "m.csv", "--strict")
    assert_one_line_error(rc, err, 3, "--strict", "1 rows rejected", "field title")
    report = pd.read_csv(tmp_path / "m.rejected.csv")
    assert report[["field", "reason"]].values.tolist() == [["title", "missing title"]]
    assert not (tmp_path / "m.csv").exists()
