"""Issue 16: owners as a field, solver ranking (揭榜挂帅) and consortia (创新联合体)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from qcy_match import ConsortiumModel, EngineConfig, InputError, MatchEngine, UsageError, VotingModel, load_records
from qcy_match.cli import main
from qcy_match.ingest.owners import canonical_cell, owner_name, owners_of, split_owners
from qcy_match.match.filters import FilterIndex, parse
from qcy_match.solvers.consortium import choose
from qcy_match.solvers.parts import split_parts, split_records
from qcy_match.solvers.votes import BASELINE, OwnerTable, rank_solvers, votes

# ---- owners as a field ----------------------------------------------------------------------------------------

TYPED = "西安 交通大学；西北工业大学、ＸＩＡＮ研究院,西安交通大学"
CANONICAL = ["西安交通大学", "西北工业大学", "XIAN研究院"]


def test_owner_names_fold_widths_spaces_and_separators():
    assert split_owners(TYPED) == CANONICAL
    assert split_owners(["西 北 大 学", None, "陕西延长石油（集团）有限责任公司\n商洛学院"]) == [
        "西北大学", "陕西延长石油(集团)有限责任公司", "商洛学院"]
    assert owner_name(" Xi'an  Jiaotong University ") == "Xi'an Jiaotong University"  # Latin spaces stay
    assert owners_of(canonical_cell(TYPED)) == CANONICAL
    assert split_owners(float("nan")) == split_owners("  ") == owners_of("") == []


def _frame(header: str) -> pd.DataFrame:
    return pd.DataFrame({"编号": ["X1", "X2", "X3"], "名称": ["钛合金锻件热处理", "锂电池回收", "羊奶脱膻"],
                         header: [TYPED, "陕西科技大学", None], "团队": ["钛合金 团队", "", "乳品组"],
                         "负责人": ["张三；李四", "王五", ""]})


@pytest.mark.parametrize("header", ["owner", "完成单位", "所属单位", "申报单位", "单位"])
@pytest.mark.parametrize("ext", ["csv", "tsv", "xlsx", "jsonl", "json", "parquet"])
def test_owners_read_from_every_format_and_header(tmp_path, header, ext):
    df = _frame(header)
    path = tmp_path / f"a.{ext}"
    if ext in ("csv", "tsv"):
        df.to_csv(path, index=False, sep="\t" if ext == "tsv" else ",")
    elif ext == "xlsx":
        df.to_excel(path, index=False)
    elif ext == "parquet":
        df.to_parquet(path, index=False)
    else:
        rows = df.to_dict(orient="records")
        text = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) if ext == "jsonl" else \
            json.dumps(rows, ensure_ascii=False)
        path.write_text(text, encoding="utf-8")
    records, rejects = load_records(path)
    assert rejects == []
    assert [owners_of(c) for c in records["owner"]] == [CANONICAL, ["陕西科技大学"], []]
    assert records["team"].tolist() == ["钛合金团队", "", "乳品组"]
    assert [owners_of(c) for c in records["leader"]] == [["张三", "李四"], ["王五"], []]


def test_owner_list_in_jsonl_and_object_rejected(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"id": "1", "title": "钛合金", "owner": ["西安 交通大学", "西北工业大学"]},
        {"id": "2", "title": "锂电池", "owner": {"name": "西北大学"}}]), encoding="utf-8")
    records, rejects = load_records(path)
    assert owners_of(records["owner"].iat[0]) == ["西安交通大学", "西北工业大学"]
    assert [(r.row, r.field) for r in rejects] == [(2, "owner")]


def test_filter_by_owner_folds_the_name_and_passes_any_co_owner():
    recs = load_records_frame()
    index = FilterIndex(recs)
    keep = index.mask(parse(["owner=西安 交通大学"]))
    assert recs["id"][keep].tolist() == ["A01", "A02", "A03"]
    keep = index.mask(parse({"owner": ["西北工业大学", "nobody"]}))
    assert recs["id"][keep].tolist() == ["A01", "A04"]  # A01 through its second owner
    assert not index.mask(parse({"team": "无此团队"})).any()


def load_records_frame() -> pd.DataFrame:
    from qcy_match.ingest.records import prepare

    return prepare(pd.DataFrame({
        "id": ["A01", "A02", "A03", "A04", "A05"],
        "title": ["钛合金锻件", "钛合金粉末", "钛合金涂层", "锂电池", "乳品"],
        "owner": ["西安交通大学;西北工业大学", "西安交通大学", "西安交通大学", "西北工业大学", None],
        "team": ["钛团队", "钛团队", "", "", ""]})).records


def test_engine_filter_by_owner_never_leaks(lsa_owner_engine):
    m = lsa_owner_engine.match(["钛合金锻件热处理"], k=10, filters={"owner": "钛合金中心"})
    got = [i for i in m.ids[0] if i is not None]
    assert got and set(got) <= {"A06", "A07", "A08"}


# ---- voting --------------------------------------------------------------------------------------------------

def _table(owners: list[str | None]) -> tuple[pd.DataFrame, OwnerTable]:
    from qcy_match.ingest.records import prepare

    recs = prepare(pd.DataFrame({"id": [f"R{i}" for i in range(len(owners))],
                                 "title": [f"记录{i}" for i in range(len(owners))], "owner": owners,
                                 "maturity": ["中试"] * len(owners)})).records
    return recs, OwnerTable.from_records(recs)


def test_several_strong_records_beat_one_lucky_match_but_an_exact_one_is_not_buried():
    recs, table = _table(["lucky", "team", "team", "team", "pile", "pile", "pile", "pile", "pile", "exact"])
    # Challenge 0: one lucky record slightly ahead of a team's three strong ones.
    # Challenge 1: an exact match (1.0) ahead of a pile of five weak ones.
    idx = np.array([[0, 1, 2, 3, -1, -1], [9, 4, 5, 6, 7, 8]])
    sc = np.array([[0.95, 0.9, 0.85, 0.8, np.nan, np.nan], [1.0, 0.4, 0.38, 0.36, 0.34, 0.32]])
    ranked = rank_solvers(["C0", "C1"], idx, sc, recs, table, k=3)
    assert ranked.owners[0, :2].tolist() == ["team", "lucky"]
    assert ranked.owners[1, 0] == "exact"
    assert ranked.owners.shape == ranked.scores.shape == (2, 3)
    assert np.isnan(ranked.scores[0, 2]) and ranked.owners[0, 2] is None
    assert [a for a, _ in ranked.evidence[0][0]] == ["R1", "R2", "R3"]  # best first
    row = ranked.table.iloc[0]
    assert (row["need_id"], row["owner"], row["rank"], row["n_relevant"], row["best_maturity"]) == (
        "C0", "team", 1, 3, "中试")
    assert row["evidence"].startswith("R1:0.900; R2:0.850")
    # The baseline ranks owners by their best record: the lucky one first.
    base = votes(idx, sc, table, BASELINE)
    assert table.names[base[base["q"] == 0]["owner"].iloc[0]] == "lucky"


def test_a_co_owned_record_shares_its_vote_and_unowned_records_are_reported():
    recs, table = _table(["甲;乙", "丙", None])
    idx, sc = np.array([[0, 1, 2]]), np.array([[1.0, 0.99, 0.98]])
    shared = rank_solvers(["C"], idx, sc, recs, table, k=3)
    assert shared.owners[0].tolist() == ["丙", "乙", "甲"]  # equal halves: by name
    whole = rank_solvers(["C"], idx, sc, recs, table, k=3, model=VotingModel(share=False))
    assert whole.owners[0].tolist() == ["乙", "甲", "丙"]
    assert shared.unowned.to_dict(orient="records") == [
        {"achievement_id": "R2", "title": "记录2", "need_ids": "C", "best_rank": 3}]


def test_owners_are_read_never_guessed():
    with pytest.raises(InputError, match="no 'owner' column"):
        OwnerTable.from_records(pd.DataFrame({"id": ["1"], "title": ["x"]}))
    with pytest.raises(ValueError, match="unknown voting method"):
        VotingModel(method="borda").check()


# ---- parts ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "parts", "source"), [
    ("需要攻克两项技术：一是高温合金精密铸造；二是铸件缺陷无损检测。要求年内完成。",
     ["高温合金精密铸造", "铸件缺陷无损检测"], "enumeration"),
    ("主要任务：（1）锂电池正极回收；（2）电解液无害化处理。", ["锂电池正极回收", "电解液无害化处理"], "enumeration"),
    ("1.高温合金铸造工艺 2.无损检测,精度0.5mm。另有3项专利。", ["高温合金铸造工艺", "无损检测,精度0.5mm"],
     "enumeration"),
    ("第一，建立热误差模型；第二，开发补偿软件。此外需要现场培训。", ["建立热误差模型", "开发补偿软件", "需要现场培训"],
     "enumeration"),
    ("一、磨削工艺优化；二、砂轮修整技术", ["磨削工艺优化", "砂轮修整技术"], "enumeration"),
    ("①磨削工艺优化；②砂轮修整技术", ["磨削工艺优化", "砂轮修整技术"], "enumeration"),
    ("提高钛合金强度，同时降低加工成本。此外，开展疲劳试验。", ["提高钛合金强度", "降低加工成本", "开展疲劳试验"],
     "sentences"),
    ("采用3项专利技术，精度达到0.05mm。", ["采用3项专利技术,精度达到0.05mm"], "sentences"),
])
def test_split_parts(text, parts, source):
    from qcy_match.text import normalize

    assert split_parts("标题", normalize(text)) == (parts, source)


def test_explicit_parts_title_fallback_and_no_usable_part():
    assert split_parts("x", "任何描述", ["高温合金铸造", "无损 检测方法", ""]) == (
        ["高温合金铸造", "无损 检测方法"], "parts")
    assert split_parts("x", "", "高温合金铸造；无损检测方法")[0] == ["高温合金铸造", "无损检测方法"]
    assert split_parts("x", "", '["高温合金铸造", "无损检测方法"]')[0] == ["高温合金铸造", "无损检测方法"]
    assert split_parts("钛合金锻件需求", "") == (["钛合金锻件需求"], "title")
    assert split_parts("需求", "无。；") == ([], "")
    parts, bad = split_records(pd.DataFrame({"id": ["N1", "N2"], "title": ["需求", "钛合金锻件需求"],
                                             "description": ["无", ""]}))
    assert parts[["need_id", "part", "source"]].values.tolist() == [["N2", 1, "title"]]
    assert bad["need_id"].tolist() == ["N1"] and "no usable part" in bad["reason"].iat[0]


# ---- consortium choice ---------------------------------------------------------------------------------------

def test_choose_covers_both_parts_and_prefers_the_region_when_close():
    # Candidates: 0 strong on part 0 (关中), 1 strong on part 1 (陕北), 2 nearly as strong on part 1 (关中).
    ev = np.array([[1.0, 0.1], [0.2, 1.0], [0.0, 0.95]])
    regions = ["关中", "陕北", "关中"]
    plain = choose(ev, regions, "", ConsortiumModel())
    assert plain.members == [0, 1] and plain.covers.all(axis=0).tolist() == [False, False]
    assert plain.covers.any(axis=0).all() and plain.note == ""
    local = choose(ev, regions, "关中", ConsortiumModel(), names=["甲", "乙", "丙"])
    assert local.members == [0, 2] and "丙(关中) instead of 乙(陕北)" in local.note
    strict = choose(ev, regions, "关中", ConsortiumModel(closeness=0.0))
    assert strict.members == [0, 1] and strict.note == ""
    one = choose(ev, regions, "", ConsortiumModel(max_members=1))
    assert len(one.members) == 1 and one.covers.sum() == 1


def test_choose_drops_members_that_add_nothing():
    ev = np.array([[1.0, 1.0], [0.9, 0.9], [0.8, 0.0]])
    assert choose(ev, ["", "", ""], "", ConsortiumModel()).members == [0]
    # A local partner that would only ride along is not added for the region's sake.
    assert choose(ev, ["陕北", "陕北", "关中"], "关中", ConsortiumModel()).members == [0]
    # ... but a local one nearly as strong takes the place of a distant one.
    assert choose(ev, ["陕北", "关中", "关中"], "关中", ConsortiumModel()).members == [1]
    assert choose(np.zeros((0, 2)), [], "", ConsortiumModel()).members == []


# ---- engine, CLI, report -------------------------------------------------------------------------------------

OWNERS = {"A01": "芯片研究院", "A02": "芯片研究院；西安交通大学", "A03": "芯片研究院", "A06": "钛合金中心",
          "A07": "钛合金中心", "A08": "钛合金 中心", "A09": "陕西理工大学", "A11": "能源研究院", "A12": "能源研究院",
          "A14": "汉中新能源公司", "A21": "乳业研究所", "A22": "西北农林科技大学", "A23": "榆林畜牧研究所"}


@pytest.fixture(scope="module")
def owned(achievements) -> pd.DataFrame:
    """The fixture achievements with owners: institutions holding several records; A10 names none."""
    out = achievements.copy()
    out["owner"] = [OWNERS.get(i, "" if i == "A10" else f"单位{i}") for i in out["id"]]
    return out


@pytest.fixture(scope="module")
def lsa_owner_engine(owned) -> MatchEngine:
    return MatchEngine(EngineConfig(encoder="lsa")).index(owned)


def test_engine_solvers(lsa_owner_engine, needs):
    res = lsa_owner_engine.solvers(needs, k=3)
    assert len(res.query_ids) == len(needs) and res.owners.shape == (len(needs), 3)
    top = dict(zip(res.query_ids, res.owners[:, 0], strict=True))
    assert top["N01"] == "芯片研究院" and top["N02"] == "钛合金中心"
    assert list(res.table.columns) == ["need_id", "owner", "rank", "score", "evidence", "n_relevant",
                                       "best_maturity", "region"]
    titanium = res.table[(res.table["need_id"] == "N02") & (res.table["owner"] == "钛合金中心")].iloc[0]
    assert titanium["evidence"].split(":")[0] in {"A06", "A07", "A08"} and titanium["region"] == "关中"
    assert set(res.unowned["achievement_id"]) <= {"A10"}
    only = lsa_owner_engine.solvers(needs, k=3, filters={"owner": "钛合金中心"})
    assert set(only.table["owner"]) == {"钛合金中心"}


def test_engine_consortium_two_fields_and_bad_input(lsa_owner_engine):
    challenges = [
        {"id": "C1", "title": "芯片封装与钛合金锻件联合攻关", "region": "宝鸡市",
         "description": "需要联合攻关：一是集成电路芯片晶圆级封装测试工艺；二是航空钛合金锻件热处理工艺。"},
        {"id": "C2", "title": "需求", "description": "无"},
    ]
    res = lsa_owner_engine.consortium(challenges, max_members=3)
    c1 = res.members[res.members["need_id"] == "C1"]
    assert set(c1["member"]) == {"芯片研究院", "钛合金中心"}
    assert c1.groupby("part")["lead"].sum().tolist() == [1, 1]
    assert list(res.members.columns) == ["need_id", "member", "part", "part_text", "score", "evidence", "lead",
                                         "region", "same_region", "note"]
    bad = res.uncovered[res.uncovered["need_id"] == "C2"]
    assert len(bad) == 1 and pd.isna(bad["part"].iat[0]) and "no usable part" in bad["reason"].iat[0]
    assert res.covered_share() == 1.0
    one = lsa_owner_engine.consortium(challenges[:1], max_members=1)
    assert one.members["member"].nunique() == 1
    assert len(one.uncovered) == 1 and "at most 1 members" in one.uncovered["reason"].iat[0]


def test_solvers_need_an_index_of_achievements_with_owners(achievements, needs):
    engine = MatchEngine(EngineConfig(encoder="lsa")).index(needs, side="needs")
    with pytest.raises(UsageError, match="index of achievements"):
        engine.solvers(achievements)
    plain = MatchEngine(EngineConfig(encoder="lsa")).index(achievements.drop(columns="owner"))
    with pytest.raises(InputError, match="never guessed"):
        plain.consortium(needs)


def test_cli_solvers_and_consortium(tmp_path, owned, needs_path):
    ach = tmp_path / "ach.jsonl"
    rows = owned.drop(columns=["region_city", "region_group"]).to_dict(orient="records")
    rows[0]["owner"] = "=HYPERLINK(\"x\")"  # a spreadsheet formula as an owner name must be escaped
    ach.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    out = tmp_path / "solvers.csv"
    assert main(["solvers", "--achievements", str(ach), "--needs", str(needs_path), "--top-k", "2", "--out",
                 str(out), "--encoder", "lsa"]) == 0
    table = pd.read_csv(out, dtype=str, encoding="utf-8-sig")
    assert list(table.columns[:5]) == ["need_id", "owner", "rank", "score", "evidence"]
    assert table.groupby("need_id").size().max() == 2
    assert table["owner"].str.startswith("'=").any() and not table["owner"].str.startswith("=").any()
    assert (tmp_path / "solvers.unowned.csv").is_file()  # A10 names no owner
    idx = tmp_path / "idx"
    assert main(["index", "--achievements", str(ach), "--out", str(idx), "--encoder", "lsa"]) == 0
    cons = tmp_path / "cons.xlsx"
    assert main(["consortium", "--index", str(idx), "--needs", str(needs_path), "--max-members", "2", "--out",
                 str(cons)]) == 0
    members = pd.read_excel(cons)
    assert members.groupby("need_id")["member"].nunique().max() <= 2
    assert (tmp_path / "cons.uncovered.xlsx").is_file()
    assert main(["consortium", "--index", str(idx), "--needs", str(needs_path), "--max-members", "0", "--out",
                 str(cons)]) == 2


def test_report_proposes_solvers_for_needs_without_a_good_match(lsa_owner_engine, owned, needs):
    from qcy_match.analytics import demand
    from qcy_match.analytics.report import build_tables, render_html

    odd = pd.DataFrame([{"id": "N99", "title": "煤矿井下人员精确定位系统",
                         "description": "井下巷道人员定位精度提升到0.3米，同时实现瓦斯浓度监测。"}])
    analysis = demand.analyse(owned, pd.concat([needs, odd], ignore_index=True), engine=lsa_owner_engine, k=5)
    report = build_tables(analysis, slots=2, n_topics=2)
    weak = set(report.tables["unmatched_needs"]["need_id"])
    assert weak, "the fixture should leave some need without a good match"
    for name in ("open_call_solvers", "open_call_consortia"):
        assert set(report.tables[name]["need_id"]) <= weak and len(report.tables[name])
    assert "揭榜挂帅" in render_html(report, "t")


# ---- the benchmark's data and metrics ----------------------------------------------------------------------------

def test_benchmark_files_are_what_the_seeded_generator_writes():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.datasets import default_data
    from benchmarks.solvers_data import build, check

    data = default_data()
    if not (data / "csl" / "csl_2000.jsonl").is_file():
        pytest.skip("CSL not found (set QCY_SHARED_DATA)")
    assert check(data) == []
    built = build(data)
    assert built.challenges.groupby(["split", "kind"]).size().tolist() == [150, 100, 150, 100]
    assert built.achievements["owner"].eq("").sum() > 0  # some records name no owner, on purpose
    c = built.challenges.set_index("id").loc["T-dev-001"]
    assert split_parts(c["title"], c["description"], c["parts"])[0], "a two-part challenge has usable parts"


def test_benchmark_metrics():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.solvers import coverage, ranking_metrics

    truth = {"C": {0: {"a": 2, "b": 1}, 1: {"a": 2}, 2: {"b": 1}}}
    assert ranking_metrics({"C": ["a", "b"]}, truth, ["C"])["nDCG@5"] == 1.0
    assert ranking_metrics({"C": ["x", "b"]}, truth, ["C"])["P@1"] == 0.0
    assert coverage({"C": ["a", "b"]}, truth, ["C"]) == 1.0
    assert coverage({"C": ["a"]}, truth, ["C"]) == 0.0
    assert coverage({"C": ["a", "b"]}, truth, ["C"], grade=2) == 0.0


def test_cli_checks_before_writing(tmp_path, achievements_path, needs_path, owned):
    out = tmp_path / "s.csv"
    base = ["--needs", str(needs_path), "--out", str(out), "--encoder", "lsa"]
    plain = tmp_path / "plain.jsonl"  # achievements without any owner column
    rows = owned.drop(columns=["region_city", "region_group", "owner"]).to_dict(orient="records")
    plain.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    assert main(["solvers", "--achievements", str(plain), *base]) == 3
    assert main(["solvers", "--achievements", str(achievements_path), "--filter", "colour=red", *base]) == 2
    assert not out.exists() and not (tmp_path / "s.rejected.csv").exists()
    assert main(["consortium", "--achievements", str(achievements_path), "--needs", str(needs_path), "--out",
                 str(needs_path.with_suffix(".jsonl")), "--encoder", "lsa"]) == 4  # would replace an input
