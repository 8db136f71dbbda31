"""Readers and writers: encodings, formats, row-level rejections, record validation, formula escaping."""

from __future__ import annotations

import csv
import json

import openpyxl
import pandas as pd
import pytest

from qcy_match import Rejection, load_records, read_table, write_table
from qcy_match.errors import InputError
from qcy_match.ingest.records import PREPARED, Prepared, canonical_columns, from_any, load_prepared, prepare, text_of
from qcy_match.ingest.tables import decode_bytes, iter_table, table_format
from qcy_match.output.rejects import rejections_frame
from qcy_match.output.tables import escape_formula

HEADER_ZH = "编号,名称,简介,行业代码,地区,关键词,成熟度,合作方式\n"
ROWS_ZH = [
    "G1,集成电路封装测试,晶圆级封装工艺,C3973,西安市高新区,集成电路;封装,中试,许可\n",
    "G2,钛合金锻件热处理,锻件组织调控,3240,宝鸡市,钛合金、锻件,产业化,转让\n",
    "G3,高镍正极材料,锂离子电池正极包覆,C3841,榆林市,锂离子电池,小试,作价入股\n",
]


def _check_zh_records(prepared: Prepared) -> None:
    """The three rows of ROWS_ZH, mapped from Chinese column names to record fields."""
    records = prepared.records
    assert records["id"].tolist() == ["G1", "G2", "G3"]
    assert records["title"].tolist() == ["集成电路封装测试", "钛合金锻件热处理", "高镍正极材料"]
    assert records["description"].tolist()[0] == "晶圆级封装工艺"
    # Codes are canonicalised: '3240' has no letter in the file but is C3240.
    assert records["industry"].tolist() == [["C3973"], ["C3240"], ["C3841"]]
    assert records["keywords"].tolist() == [["集成电路", "封装"], ["钛合金", "锻件"], ["锂离子电池"]]
    assert records["region_city"].tolist() == ["西安", "宝鸡", "榆林"]
    assert records["region_group"].tolist() == ["关中", "关中", "陕北"]
    assert records["maturity"].tolist() == ["中试", "产业化", "小试"]
    assert records["transfer_mode"].tolist() == ["许可", "转让", "作价入股"]
    assert prepared.rows.tolist() == [1, 2, 3]
    assert not any(str(c).startswith("_") for c in records.columns)  # row numbers travel beside the records


# ---- formats and encodings -----------------------------------------------------------------------------------
def test_gbk_csv_with_chinese_headers(tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes((HEADER_ZH + "".join(ROWS_ZH)).encode("gbk"))
    with pytest.raises(UnicodeDecodeError):  # the fixture really is not UTF-8
        path.read_bytes().decode("utf-8")
    prepared = load_prepared(path)
    assert prepared.rejected == []
    _check_zh_records(prepared)


def test_utf8_bom_csv_header_has_no_bom(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes((HEADER_ZH + "".join(ROWS_ZH)).encode("utf-8-sig"))
    raw, rejects = read_table(path)
    assert rejects == []
    assert raw.columns[0] == "编号"  # not '\ufeff编号', which would lose the id column
    _check_zh_records(load_prepared(path))


def test_tsv_is_read(tmp_path):
    path = tmp_path / "rows.tsv"
    lines = [HEADER_ZH.replace(",", "\t")] + [r.replace(",", "\t") for r in ROWS_ZH]
    path.write_text("".join(lines), encoding="utf-8")
    prepared = load_prepared(path)
    assert prepared.rejected == []
    _check_zh_records(prepared)


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_csv_row_with_invalid_bytes_is_rejected_alone(tmp_path, encoding):
    path = tmp_path / f"bad_{encoding}.csv"
    bad = "G9,损坏".encode(encoding) + b"\xff" + ",描述,C3973,榆林市,,中试,许可\n".encode(encoding)
    path.write_bytes(HEADER_ZH.encode(encoding) + ROWS_ZH[0].encode(encoding) + bad
                     + ROWS_ZH[1].encode(encoding) + ROWS_ZH[2].encode(encoding))
    prepared = load_prepared(path)
    records, rejects = prepared.records, prepared.rejected
    assert records["id"].tolist() == ["G1", "G2", "G3"]
    assert records["title"].tolist()[0] == "集成电路封装测试"  # the good rows are not mojibake
    assert prepared.rows.tolist() == [1, 3, 4]
    assert len(rejects) == 1
    r = rejects[0]
    assert (r.file, r.row, r.field) == (str(path), 2, "名称")
    assert "undecodable" in r.reason


def test_decode_bytes_detects_encodings():
    text = "编号,名称\n1,集成电路\n"
    assert decode_bytes(text.encode("utf-8")) == (text, "utf-8-sig")
    assert decode_bytes(text.encode("utf-8-sig")) == (text, "utf-8-sig")
    decoded, enc = decode_bytes(text.encode("gbk"))
    assert (decoded, enc) == (text, "gb18030")
    decoded, enc = decode_bytes("集成电路".encode() + b"\xff")
    assert "undecodable" in enc and decoded.endswith("\ufffd")


BAD_ROWS_CSV = """id,title,description,industry,region
A1,集成电路封装,晶圆封装工艺,C3973,西安市
,没有编号,描述二,C3973,西安市
A3,,描述三,C3240,宝鸡市

A1,重复编号,描述四,C3841,榆林市
A5,未知行业,描述五,C9999,汉中市
A6,—— ！！,……,C1441,汉中市
A7,字段太多,描述,C1441,汉中市,多余的字段
A8,多行业,描述八,"C39,C27",关中
"""
# Data rows (header not counted): 1 A1 good, 2 no id, 3 no title, 4 blank, 5 duplicate, 6 unknown code,
# 7 empty text, 8 too many fields, 9 good with two codes.
EXPECTED_BAD = {2: ("id", "missing id"), 3: ("title", "missing title"), 5: ("id", "duplicate id"),
                6: ("industry", "unknown"), 7: ("title", "empty text"), 8: ("<row>", "6 fields")}


def test_bad_csv_rows_each_end_in_a_rejection(tmp_path):
    path = tmp_path / "bad_rows.csv"
    path.write_text(BAD_ROWS_CSV, encoding="utf-8")
    prepared = load_prepared(path)
    records, rejects = prepared.records, prepared.rejected
    assert records["id"].tolist() == ["A1", "A8"]
    assert prepared.rows.tolist() == [1, 9]
    assert records["industry"].tolist() == [["C3973"], ["C39", "C27"]]
    by_row = {r.row: r for r in rejects}
    assert sorted(by_row) == sorted(EXPECTED_BAD)
    for row, (field, reason) in EXPECTED_BAD.items():
        r = by_row[row]
        assert r.file == str(path)
        assert r.field == field, r
        assert reason in r.reason, r
    assert "row 1" in by_row[5].reason  # the duplicate names where the id was first used
    assert by_row[5].value == "A1"
    assert by_row[6].value == "C9999"
    # Nothing silently dropped: good + rejected == non-blank data rows.
    non_blank = [line for line in BAD_ROWS_CSV.splitlines()[1:] if line.strip()]
    assert len(records) + len(rejects) == len(non_blank) == 8


def test_broken_jsonl_lines_are_rejected_with_line_numbers(tmp_path):
    path = tmp_path / "broken.jsonl"
    lines = ['{"id": "J1", "title": "锂离子电池正极"}',
             '{"id": "J2", "title": "断了的行"',
             "",
             "[1, 2]",
             '{"id": "J1", "title": "重复"}',
             '{"id": "J5", "title": "钛合金", "industry": "C3240"}']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    prepared = load_prepared(path)
    records, rejects = prepared.records, prepared.rejected
    assert records["id"].tolist() == ["J1", "J5"]
    assert prepared.rows.tolist() == [1, 6]
    got = {(r.row, r.field) for r in rejects}
    assert got == {(2, "<line>"), (4, "<line>"), (5, "id")}
    reasons = {r.row: r.reason for r in rejects}
    assert "invalid JSON" in reasons[2]
    assert "JSON object" in reasons[4]
    assert all(r.file == str(path) for r in rejects)
    assert len(records) + len(rejects) == sum(1 for line in lines if line.strip())


def test_jsonl_row_with_invalid_bytes(tmp_path):
    path = tmp_path / "bytes.jsonl"
    path.write_bytes('{"id": "J1", "title": "集成电路"}\n'.encode() + b'{"id": "J2", "title": "\xff\xfe"}\n'
                     + '{"id": "J3", "title": "钛合金"}\n'.encode())
    records, rejects = load_records(path)
    assert records["id"].tolist() == ["J1", "J3"]
    assert [(r.row, r.field) for r in rejects] == [(2, "title")]


def test_json_array_file(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([{"id": 1, "title": "集成电路"}, {"id": 2, "title": ""}], ensure_ascii=False),
                    encoding="utf-8")
    records, rejects = load_records(path)
    assert records["id"].tolist() == ["1"]
    assert [(r.row, r.field, r.reason) for r in rejects] == [(2, "title", "missing title")]


def _frame_with_bad_rows() -> pd.DataFrame:
    return pd.DataFrame({
        "编号": ["X1", "X2", None, "X4", "X2"],
        "名称": ["钛合金锻件", "锂电池回收", "乳制品", None, "重复"],
        "行业代码": ["C3240", "3841", "C1441", "C2710", "C3841"],
        "地区": ["宝鸡市", "汉中市", "榆林市", "咸阳市", "汉中市"],
        "owner": ["宝钛", "汉中公司", "榆林", "咸阳", "重复"],
    })


@pytest.mark.parametrize("ext", ["xlsx", "parquet"])
def test_xlsx_and_parquet(tmp_path, ext):
    path = tmp_path / f"rows.{ext}"
    df = _frame_with_bad_rows()
    if ext == "xlsx":
        df.to_excel(path, index=False)
    else:
        df.to_parquet(path, index=False)
    records, rejects = load_records(path)
    assert records["id"].tolist() == ["X1", "X2"]
    assert records["industry"].tolist() == [["C3240"], ["C3841"]]
    assert records["region_group"].tolist() == ["关中", "陕南"]
    assert records["owner"].tolist() == ["宝钛", "汉中公司"]  # metadata columns survive
    assert [(r.file, r.row, r.field) for r in rejects] == [(str(path), 3, "id"), (str(path), 4, "title"),
                                                          (str(path), 5, "id")]
    assert "duplicate" in rejects[2].reason
    assert len(records) + len(rejects) == len(df)


def test_parquet_numeric_industry_codes_with_missing_value(tmp_path):
    path = tmp_path / "numeric.parquet"
    pd.DataFrame({"id": [1, 2, 3], "title": ["钛合金锻件", "锂电池", "乳制品"],
                  "industry": [3240, None, 1441]}).to_parquet(path, index=False)
    records, rejects = load_records(path)
    assert rejects == []
    assert records["id"].tolist() == ["1", "2", "3"]
    assert records["industry"].tolist() == [["C3240"], [], ["C1441"]]


def test_blank_xlsx_row_is_skipped_like_csv(tmp_path):
    path = tmp_path / "blank.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["id", "title"])
    ws.append(["B1", "钛合金"])
    ws.append([None, None])
    ws.append(["B3", "锂电池"])
    wb.save(path)
    prepared = load_prepared(path)
    records, rejects = prepared.records, prepared.rejected
    assert records["id"].tolist() == ["B1", "B3"]
    assert prepared.rows.tolist() == [1, 3]
    assert rejects == []


def test_iter_table_chunks_keep_row_numbers(achievements_path):
    chunks = list(iter_table(achievements_path, chunk_rows=5))
    assert len(chunks) == 5  # 24 rows in chunks of 5
    rows = [r for df, _ in chunks for r in df["_row"]]
    assert rows == list(range(1, 25))


def test_unreadable_inputs_raise_input_error(tmp_path):
    with pytest.raises(InputError, match="unknown file type"):
        table_format(tmp_path / "x.docx")
    with pytest.raises(InputError, match="no such file"):
        read_table(tmp_path / "missing.csv")
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(b"this is not a zip file")
    with pytest.raises(InputError, match="XLSX"):
        read_table(junk)
    junk_pq = tmp_path / "junk.parquet"
    junk_pq.write_bytes(b"PAR1 nope")
    with pytest.raises(InputError, match="Parquet"):
        read_table(junk_pq)
    header_blank = tmp_path / "blank_header.csv"
    header_blank.write_text(",,\nA1,集成电路,描述\n", encoding="utf-8")
    with pytest.raises(InputError, match="header"):
        read_table(header_blank)


def test_empty_csv_gives_no_rows(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    df, rejects = read_table(path)
    assert len(df) == 0 and rejects == []


# ---- records ---------------------------------------------------------------------------------------------------
def test_fixture_records_shape(achievements, needs):
    assert len(achievements) == 24 and len(needs) == 8
    assert achievements["id"].is_unique
    a01 = achievements.set_index("id").loc["A01"]
    assert a01["industry"] == ["C3973"]
    assert a01["keywords"] == ["集成电路", "芯片封装", "晶圆"]
    assert (a01["region_city"], a01["region_group"]) == ("西安", "关中")
    assert a01["owner"] == "西安电子科技大学"
    assert "company" in needs.columns
    # Field order: the record fields, derived region columns, then metadata.
    assert list(achievements.columns[:10]) == ["id", "title", "description", "industry", "region", "keywords",
                                               "maturity", "transfer_mode", "region_city", "region_group"]


def test_canonical_columns_maps_aliases_and_keeps_unknown():
    mapping = canonical_columns(["编号", "成果名称", "摘要", "所属行业", "所在地", "关键字", "技术成熟度", "转化方式",
                                 "完成单位", "budget", "Title"])
    assert mapping == {"编号": "id", "成果名称": "title", "摘要": "description", "所属行业": "industry",
                       "所在地": "region", "关键字": "keywords", "技术成熟度": "maturity", "转化方式": "transfer_mode",
                       "完成单位": "owner"}
    # The first column mapping to a field wins; a second alias of 'title' stays a metadata column.
    assert "Title" not in mapping


def test_from_any_dicts_normalises_text_and_lists():
    records, rejects = from_any([
        {"id": 7, "title": "ＧａＮ功率器件", "industry": "c39, 2710", "keywords": "芯片；外延"},
        {"id": 8.0, "title": "鈦合金鍛件", "keywords": '["钛合金", "锻件"]'},
        {"id": None, "title": "no id"},
        {"id": "9", "title": "——！！", "description": "……"},
    ])
    assert records["id"].tolist() == ["7", "8"]
    assert records["title"].tolist() == ["GaN功率器件", "钛合金锻件"]
    assert records["industry"].tolist() == [["C39", "C2710"], []]
    assert records["keywords"].tolist() == [["芯片", "外延"], ["钛合金", "锻件"]]
    assert [(r.row, r.field) for r in rejects] == [(3, "id"), (4, "title")]
    assert "empty text" in rejects[1].reason


def test_prepared_frames_are_marked_not_guessed_from_their_columns(achievements):
    assert achievements.attrs.get(PREPARED) == achievements.columns.tolist()
    part = achievements.iloc[3:7]
    assert from_any(part)[0] is part  # a slice of prepared records is passed through, not validated again
    # Cutting columns keeps pandas' attrs but not the marked columns: the rows are validated (descriptions added).
    cut = achievements[["id", "title"]].head(2)
    records, _ = from_any(cut)
    assert records is not cut and records["description"].tolist() == ["", ""]
    # The same columns without the marker are validated: a bad code is rejected instead of trusted.
    raw = achievements.head(2).copy()
    raw.attrs.clear()
    raw["industry"] = [["C3973"], ["not a code"]]
    records, rejects = from_any(raw)
    assert records["id"].tolist() == [achievements["id"].iloc[0]]
    assert [(r.row, r.field) for r in rejects] == [(2, "industry")]


def test_prepare_leaves_its_input_alone_and_numbers_rows_from_one():
    raw = pd.DataFrame({"id": ["x", "", "z"], "title": ["钛合金", "锂电池", "芯片"]})
    prepared = prepare(raw)
    assert raw.columns.tolist() == ["id", "title"]  # no row-number column added to the caller's frame
    assert prepared.rows.tolist() == [1, 3]
    assert prepared.records["id"].tolist() == ["x", "z"]
    assert [(r.row, r.field) for r in prepared.rejected] == [(2, "id")]


def test_unknown_code_rejection_carries_a_name_hint():
    _, rejects = from_any([{"id": "1", "title": "芯片", "industry": "集成电路"}])
    assert len(rejects) == 1
    assert rejects[0].field == "industry"
    assert "nearest by name" in rejects[0].reason and "C3973" in rejects[0].reason


def test_text_of_joins_title_keywords_description(achievements):
    text = text_of(achievements.iloc[:1])[0]
    assert text.startswith("28纳米集成电路芯片封装测试工艺 集成电路 芯片封装 晶圆 ")
    assert text.endswith("降低封装成本.")  # full-width 。 folded to '.'


def test_rejection_report_frame():
    rejects = [Rejection("a.csv", 3, "id", "missing id"), Rejection("b.jsonl", 1, "<line>", "invalid JSON", "{")]
    frame = rejections_frame(rejects)
    assert frame.columns.tolist() == ["file", "row", "field", "reason", "value"]
    assert frame.to_dict("records")[1] == {"file": "b.jsonl", "row": 1, "field": "<line>", "reason": "invalid JSON",
                                           "value": "{"}
    assert rejections_frame([]).columns.tolist() == ["file", "row", "field", "reason", "value"]


# ---- writing ---------------------------------------------------------------------------------------------------
DANGEROUS = ["=1+2", "+SUM(A1)", "-2+3", "@cmd", "\tTAB", "safe", "a=b", "钛合金"]
ESCAPED = ["'=1+2", "'+SUM(A1)", "'-2+3", "'@cmd", "'\tTAB", "safe", "a=b", "钛合金"]
TEXT_DTYPES = [pytest.param(None, id="default-dtype"), pytest.param(object, id="object")]


def _dangerous_frame(dtype=None) -> pd.DataFrame:
    return pd.DataFrame({"text": pd.Series(DANGEROUS, dtype=dtype), "num": [-1.5] * len(DANGEROUS),
                         "n": list(range(len(DANGEROUS)))})


@pytest.mark.parametrize("dtype", TEXT_DTYPES)
def test_write_csv_escapes_formulas(tmp_path, dtype):
    path = tmp_path / "out.csv"
    write_table(_dangerous_frame(dtype), path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM so Excel opens Chinese text correctly
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["text"] for r in rows] == ESCAPED
    assert {r["num"] for r in rows} == {"-1.5"}  # numbers are not text; negative numbers stay numbers


def test_write_csv_append_adds_no_second_header(tmp_path):
    path = tmp_path / "out.csv"
    df = pd.DataFrame({"a": ["x"], "b": [1]})
    write_table(df, path)
    write_table(df, path, append=True)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows == [["a", "b"], ["x", "1"], ["x", "1"]]


@pytest.mark.parametrize("dtype", [None, object])
def test_write_jsonl_is_not_escaped(tmp_path, dtype):
    path = tmp_path / "out.jsonl"
    write_table(_dangerous_frame(dtype), path)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == DANGEROUS
    assert "钛合金" in path.read_text(encoding="utf-8")  # not \u-escaped


@pytest.mark.parametrize("dtype", TEXT_DTYPES)
def test_write_xlsx_escapes_formulas(tmp_path, dtype):
    path = tmp_path / "out.xlsx"
    write_table(_dangerous_frame(dtype), path)
    ws = openpyxl.load_workbook(path).active
    values = [ws.cell(row=i + 2, column=1).value for i in range(len(DANGEROUS))]
    assert values == ESCAPED
    assert all(ws.cell(row=i + 2, column=1).data_type == "s" for i in range(len(DANGEROUS)))
    with pytest.raises(InputError):
        write_table(_dangerous_frame(), path, append=True)


def test_write_parquet_roundtrip(tmp_path):
    path = tmp_path / "out.parquet"
    write_table(_dangerous_frame(), path)
    back = pd.read_parquet(path)
    assert back["text"].tolist() == DANGEROUS


def test_escape_formula_only_touches_strings():
    assert escape_formula("=A1") == "'=A1"
    assert escape_formula(-3) == -3
    assert escape_formula(None) is None
    assert escape_formula("") == ""


def test_rows_without_ids_get_their_row_numbers_only_when_asked(tmp_path):
    path = tmp_path / "labelled.tsv"
    path.write_text("title\tcategory\n锂离子电池正极材料\t工学\n\t农学\n小麦抗旱品种选育\t农学\n", encoding="utf-8")
    strict, rejected = load_records(path)
    assert len(strict) == 0 and {r.field for r in rejected} == {"id"}
    prepared = load_prepared(path, ids_from_rows=True)
    records, rejected = prepared.records, prepared.rejected
    assert records["id"].tolist() == ["1", "3"] == prepared.rows.astype(str).tolist()
    assert [(r.row, r.field) for r in rejected] == [(2, "title")]
