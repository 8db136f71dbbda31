"""Issue 13, readers and writers: each probe input is generated here, and each answer is a rejection or one clear
InputError naming the file; nothing vanishes, no traceback, no runaway memory."""

from __future__ import annotations

import csv
import io
import json
import logging
import time
import tracemalloc
import zipfile

import openpyxl
import pandas as pd
import pytest

from qcy_match.analytics.report import Report, write_report
from qcy_match.errors import InputError, RejectedRowsError
from qcy_match.ingest import xlsx
from qcy_match.ingest.records import load_prepared, load_records
from qcy_match.ingest.rows import MAX_COLUMNS, MAX_FIELD_CHARS, MAX_ROW_BYTES
from qcy_match.ingest.tables import read_table
from qcy_match.output.rejects import report_rejections
from qcy_match.output.tables import write_table

INJECTION = "=cmd|' /C calc'!A0"


def _needs_csv(path, n=1000, broken=None):
    """A CSV of ``n`` needs; ``broken`` maps a data row number to the line written in its place."""
    lines = ["id,title,description\n"]
    for i in range(1, n + 1):
        lines.append((broken or {}).get(i, f"N{i},钛合金薄壁件铣削变形控制{i},描述{i}\n"))
    path.write_text("".join(lines), encoding="utf-8")
    return path


# ---- 3: an unclosed quote ------------------------------------------------------------------------------------------
def test_unclosed_quote_rejects_its_row_and_rereads_the_rest(tmp_path):
    path = _needs_csv(tmp_path / "needs.csv", broken={4: 'N4,"钛合金薄壁件,描述4\n'})
    prepared = load_prepared(path)
    records, rejects = prepared.records, prepared.rejected
    assert len(records) == 999 and len(rejects) == 1
    r = rejects[0]
    assert (r.file, r.row, r.field) == (str(path), 4, "title")
    assert "unclosed quote" in r.reason and "line 5" in r.reason and "lines 6–1001" in r.reason
    assert prepared.rows.tolist() == [i for i in range(1, 1001) if i != 4]
    assert records["title"].str.len().max() < 40  # no row swallowed the others
    with pytest.raises(RejectedRowsError, match="row 4 field title: unclosed quote"):
        report_rejections(rejects, tmp_path / "rejected.csv", strict=True)


@pytest.mark.parametrize("closing", ['N50,"标题,50",描述50\n', 'N50,标题50,描述50"\n'],
                         ids=["closed-by-a-later-quoted-field", "closed-by-a-stray-quote"])
def test_quote_closed_rows_later_still_loses_no_row(tmp_path, closing):
    path = _needs_csv(tmp_path / "needs.csv", n=100, broken={4: 'N4,"标题4,描述4\n', 50: closing})
    raw, rejects = read_table(path)
    assert [(r.row, r.field) for r in rejects] == [(4, "title")]
    assert "lines 6–51" in rejects[0].reason
    assert sorted(raw["_row"].tolist() + [4]) == list(range(1, 101))


def test_multi_line_values_written_properly_are_kept(tmp_path):
    path = tmp_path / "multi.csv"
    df = pd.DataFrame({"id": ["A1", "A2"], "title": ["钛合金", "锂电池"],
                       "description": ["第一段，有逗号, commas, too\n第二段\n\n第三段", "一行"]})
    write_table(df, path)
    raw, rejects = read_table(path)
    assert rejects == []
    assert raw["description"].tolist() == df["description"].tolist()


def test_misplaced_quote_inside_one_line_is_read_leniently(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('id,title\nA1,"钛合金"薄壁件\nA2,锂电池\n', encoding="utf-8")
    raw, rejects = read_table(path)
    assert rejects == [] and raw["title"].tolist() == ["钛合金薄壁件", "锂电池"]


# ---- 7: workbooks with several sheets ------------------------------------------------------------------------------
def _workbook(path, sheets: dict[str, list[list]], hidden=()):
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
        if name in hidden:
            ws.sheet_state = "hidden"
    wb.save(path)
    return path


ACH = [["id", "title"], ["A1", "钛合金锻件"], ["A2", "锂电池回收"]]
NEEDS = [["编号", "名称"], ["N1", "薄壁件变形"]]


def test_workbook_with_several_filled_sheets_is_refused_naming_them(tmp_path):
    path = _workbook(tmp_path / "two.xlsx", {"说明": [["readme"]], "成果": ACH, "空": []}, hidden=("说明",))
    with pytest.raises(InputError, match=r"2 sheets hold data \('说明' \(hidden\), '成果'\).*sheet="):
        read_table(path)


def test_named_sheet_is_read(tmp_path):
    path = _workbook(tmp_path / "both.xlsx", {"成果": ACH, "需求": NEEDS})
    records, rejects = load_records(path, sheet="需求")
    assert records["id"].tolist() == ["N1"] and rejects == []
    raw, _ = read_table(path, sheet=0)
    assert raw["id"].tolist() == ["A1", "A2"] and raw["_row"].tolist() == [1, 2]
    with pytest.raises(InputError, match="no sheet named '供给'; the workbook has '成果', '需求'"):
        read_table(path, sheet="供给")
    with pytest.raises(InputError, match="no sheet at position 5"):
        read_table(path, sheet=5)
    csv_path = _needs_csv(tmp_path / "n.csv", n=2)
    with pytest.raises(InputError, match="names a worksheet, but this is a CSV file"):
        read_table(csv_path, sheet="成果")


def test_xlsx_text_is_not_taken_for_undecodable_bytes(tmp_path):
    path = tmp_path / "ctrl.xlsx"
    write_table(pd.DataFrame({"id": ["A1"], "title": ["钛合金\x01锻件"]}), path)  # written as U+FFFD
    raw, rejects = read_table(path)
    assert rejects == [] and raw["title"].tolist() == ["钛合金\ufffd锻件"]


def test_the_only_filled_sheet_is_read_even_after_a_hidden_empty_one(tmp_path):
    path = _workbook(tmp_path / "one.xlsx", {"隐藏": [], "成果": ACH}, hidden=("隐藏",))
    raw, rejects = read_table(path)
    assert raw["id"].tolist() == ["A1", "A2"] and rejects == []


# ---- 8 and 9: formula injection in what is written -----------------------------------------------------------------
def test_report_tables_are_formula_escaped(tmp_path):
    table = pd.DataFrame({"title": [INJECTION, "+1", "钛合金"], "score": [0.5, -1.0, 2.0]})
    report = Report(tables={"unmatched_needs": table, "roadshow_shortlist": table}, notes={})
    write_report(report, tmp_path)
    wb = openpyxl.load_workbook(tmp_path / "tables.xlsx")
    assert wb.sheetnames == ["unmatched_needs", "roadshow_shortlist"]
    for ws in wb.worksheets:
        cells = [ws.cell(row=r, column=1) for r in (2, 3, 4)]
        assert [c.value for c in cells] == ["'" + INJECTION, "'+1", "钛合金"]
        assert all(c.data_type == "s" for c in cells)
        assert ws.cell(row=3, column=2).value == -1  # numbers stay numbers
    with open(tmp_path / "tables" / "unmatched_needs.csv", encoding="utf-8-sig", newline="") as fh:
        assert [r["title"] for r in csv.DictReader(fh)] == ["'" + INJECTION, "'+1", "钛合金"]


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_carriage_return_in_a_value_cannot_start_a_row(tmp_path, suffix):
    value = "某公司\r" + INJECTION
    path = tmp_path / f"out{suffix}"
    write_table(pd.DataFrame({"id": ["A1", "A2"], "owner": [value, "\r\n=1+1"], "=head": ["x", "y"]}), path)
    text = path.read_text(encoding="utf-8-sig")
    assert "\r" not in text  # a line break inside a value is a LF, and quoted (a line-based reader sees it open)
    assert '"某公司\n=cmd' in text
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t" if suffix == ".tsv" else ","))
    assert rows == [["id", "owner", "'=head"], ["A1", "某公司\n" + INJECTION, "x"], ["A2", "'\n=1+1", "y"]]
    raw, rejects = read_table(path)
    assert rejects == [] and raw["id"].tolist() == ["A1", "A2"]


# ---- 10: a zip bomb ------------------------------------------------------------------------------------------------
def test_xlsx_zip_bomb_is_refused_before_anything_is_inflated(tmp_path, monkeypatch):
    buf = io.BytesIO()
    _workbook(buf, {"成果": ACH})
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for info in src.infolist():
            if info.filename != "xl/sharedStrings.xml":
                zf.writestr(info.filename, src.read(info.filename))
        with zf.open("xl/sharedStrings.xml", "w", force_zip64=True) as fh:  # 200 MB of one character
            fh.write(b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>')
            block = b"a" * (1 << 20)
            for _ in range(200):
                fh.write(block)
            fh.write(b"</t></si></sst>")
    assert path.stat().st_size < 2 << 20

    def no_inflating(*args, **kwargs):
        raise AssertionError("openpyxl was asked to open the bomb")

    monkeypatch.setattr(openpyxl, "load_workbook", no_inflating)
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match=r"xl/sharedStrings.xml is compressed [\d,]+:1 .* zip bomb") as err:
            read_table(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(err.value)
    assert peak < 5 << 20


def test_xlsx_entry_over_the_size_limit_is_refused(tmp_path, monkeypatch):
    path = _workbook(tmp_path / "big.xlsx", {"成果": ACH + [[f"A{i}", "钛合金锻件" * 20] for i in range(3, 2000)]})
    monkeypatch.setattr(xlsx, "MAX_ZIP_ENTRY_BYTES", 10_000)
    with pytest.raises(InputError, match="would inflate to .* the limit is 10,000"):
        read_table(path)


# ---- 11: header width and field size -------------------------------------------------------------------------------
def test_header_of_100k_columns_is_refused_at_once(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(100_000)) + "\n" + ",".join(["x"] * 100_000) + "\n")
    start = time.perf_counter()
    with pytest.raises(InputError, match=f"the header has 100,000 columns; the limit is {MAX_COLUMNS:,}"):
        read_table(path)
    assert time.perf_counter() - start < 5


def test_wide_xlsx_header_and_jsonl_keys_are_limited(tmp_path):
    path = _workbook(tmp_path / "wide.xlsx", {"成果": [[f"c{i}" for i in range(MAX_COLUMNS + 1)], ["x"]]})
    with pytest.raises(InputError, match="sheet '成果'.*1,001 columns"):
        read_table(path)
    parquet = tmp_path / "wide.parquet"
    pd.DataFrame([[str(i) for i in range(MAX_COLUMNS + 1)]], columns=[f"c{i}" for i in range(MAX_COLUMNS + 1)]
                 ).to_parquet(parquet)
    with pytest.raises(InputError, match="1,001 columns"):
        read_table(parquet)
    jsonl = tmp_path / "keys.jsonl"
    rows = [{"id": "A1", "title": "钛合金"}, {f"k{i}": i for i in range(MAX_COLUMNS)}, {"id": "A3", "title": "锂"}]
    jsonl.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    raw, rejects = read_table(jsonl)
    assert raw["_row"].tolist() == [1, 3]
    assert [(r.row, r.field) for r in rejects] == [(2, "k0")]
    assert "more than 1,000 distinct fields" in rejects[0].reason


def test_oversized_field_and_row_are_rejected_by_name(tmp_path):
    path = tmp_path / "big.csv"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("id,title,description\nA1,钛合金,短\n")
        fh.write("A2,锂电池," + "x" * (MAX_FIELD_CHARS + 1) + "\n")
        fh.write("A3,集成电路," + "y" * (MAX_ROW_BYTES + 10) + "\n")
        fh.write("A4,乳制品,短\n")
    raw, rejects = read_table(path)
    assert raw["id"].tolist() == ["A1", "A4"] and raw["_row"].tolist() == [1, 4]
    assert [(r.row, r.field) for r in rejects] == [(2, "description"), (3, "<row>")]
    assert f"the limit is {MAX_FIELD_CHARS:,}" in rejects[0].reason
    assert f"longer than {MAX_ROW_BYTES:,} bytes" in rejects[1].reason


# ---- mixed encodings -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_file_mixing_utf8_and_gbk_rows_reads_every_row(tmp_path, caplog, suffix):
    rows = [("A1", "钛合金锻件热处理", "utf-8"), ("A2", "锂离子电池正极材料", "gbk"), ("A3", "集成电路封装", "utf-8"),
            ("A4", "乳制品冷链物流", "gbk")]
    path = tmp_path / f"mixed{suffix}"
    if suffix == ".csv":
        body = b"id,title\n" + b"".join(f"{i},{t}\n".encode(enc) for i, t, enc in rows)
    else:
        body = b"".join((json.dumps({"id": i, "title": t}, ensure_ascii=False) + "\n").encode(enc)
                        for i, t, enc in rows)
    path.write_bytes(body)
    with caplog.at_level(logging.WARNING, logger="qcy_match.ingest.encoding"):
        records, rejects = load_records(path)
    assert rejects == []
    assert records["title"].tolist() == [t for _, t, _ in rows]
    first = 2 if suffix == ".csv" else 1
    assert any(f"mixes encodings (UTF-8 on lines {first}, {first + 2}; GB18030 on lines {first + 1}, {first + 3})"
               in r.message for r in caplog.records)


# ---- wrong types in JSONL ------------------------------------------------------------------------------------------
def test_jsonl_values_of_the_wrong_type_are_rejected_by_field(tmp_path):
    path = tmp_path / "types.jsonl"
    rows = [{"id": ["A1", "A2"], "title": "钛合金"}, {"id": "A3", "title": {"zh": "锂电池"}},
            {"id": "A4", "title": "集成电路", "keywords": [{"k": 1}]},
            {"id": "A5", "title": "乳制品", "extra": {"a": 1}},
            {"id": 6, "title": "钛合金锻件", "industry": ["C3240", 3841], "keywords": ["锻件"]}]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    records, rejects = load_records(path)
    assert records["id"].tolist() == ["A5", "6"]  # a nested object in a metadata column is kept as it is
    assert records["industry"].tolist() == [[], ["C3240", "C3841"]]
    got = [(r.row, r.field, r.reason) for r in rejects]
    assert got == [(1, "id", "expected text or a number, got a list"),
                   (2, "title", "expected text or a number, got a JSON object"),
                   (3, "keywords", "expected a list of text or numbers, got a list holding lists or objects")]
