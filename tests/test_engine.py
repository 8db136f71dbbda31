"""The matching engine on the Chinese fixtures: ranking, filters, explanations, two-way matching, threads,
persistence and refusal of damaged index directories."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from qcy_match import EngineConfig, IndexFormatError, MatchEngine, match_records
from qcy_match.errors import FilterError
from qcy_match.match.filters import mask, parse
from qcy_match.text import normalize

# Hand-derived from tests/data/achievements.jsonl.
C32 = {"A06", "A07", "A08", "A09", "A10"}
SHAANBEI = {"A05", "A10", "A11", "A15", "A20", "A23"}  # 榆林 and 延安
PILOT = {"A02", "A05", "A07", "A10", "A11", "A14", "A16", "A19", "A22"}  # 中试
LICENSE = {"A01", "A05", "A08", "A12", "A15", "A17", "A22"}  # 许可
XIAN = {"A01", "A02", "A03", "A07", "A12", "A16"}
HIGH_TECH_ZONE = {"A01", "A06", "A07", "A12", "A16"}  # 西安市高新区 and 宝鸡市高新区
IC_OR_PHARMA_GUANZHONG = {"A01", "A02", "A03", "A04", "A16", "A17", "A19"}
# The obvious best achievement for each need (same subject, mostly the same words).
BEST = {"N01": "A01", "N02": "A06", "N03": "A11", "N05": "A21", "N06": "A14", "N07": "A07", "N08": "A22"}
EXPLANATION_KEYS = {"shared_keywords", "industry_agreement", "region_agreement", "bm25_score", "bm25_rank",
                    "dense_score", "dense_rank"}


def result_ids(matches, row: int = 0) -> list[str]:
    return [x for x in matches.ids[row] if x is not None]


def industry_of(achievements: pd.DataFrame) -> dict[str, list[str]]:
    return dict(zip(achievements["id"], achievements["industry"], strict=True))


# ---- ranking ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("engine_name", ["lsa_engine", "use_engine"])
def test_each_need_gets_its_obvious_match_first(request, engine_name, needs, achievements):
    engine = request.getfixturevalue(engine_name)
    m = engine.match(needs, k=5)
    assert m.query_ids == needs["id"].tolist()
    codes = industry_of(achievements)
    need_codes = dict(zip(needs["id"], needs["industry"], strict=True))
    for i, qid in enumerate(m.query_ids):
        if qid == "N08":
            continue  # see test_many_rare_shared_words_beat_one_generic_word
        top = m.ids[i, 0]
        assert codes[top] == need_codes[qid], (qid, top)  # the best match is in the need's own 小类
        if qid in BEST:
            assert top == BEST[qid], (qid, result_ids(m, i))




@pytest.mark.parametrize("engine_name", ["lsa_engine", "use_engine"])
def test_many_rare_shared_words_beat_one_generic_word(request, engine_name, needs):
    engine = request.getfixturevalue(engine_name)
    m = engine.match(needs[needs["id"] == "N08"], k=3)
    assert m.ids[0, 0] == "A22", result_ids(m)


def test_ic_need_gets_c39_first(lsa_engine, needs, achievements):
    m = lsa_engine.match(needs[needs["id"] == "N01"], k=5)
    assert industry_of(achievements)[m.ids[0, 0]][0].startswith("C39")


def test_scores_and_shapes(lsa_engine, needs):
    m = lsa_engine.match(needs, k=5)
    assert m.indices.shape == m.scores.shape == m.ids.shape == (8, 5)
    assert len(m) == 8
    assert (np.diff(m.scores, axis=1) <= 1e-6).all()  # best first
    for i in range(len(m)):
        assert len(set(result_ids(m, i))) == 5
        assert [lsa_engine.records_["id"][j] for j in m.indices[i]] == result_ids(m, i)


def test_k_larger_than_corpus_returns_every_record(lsa_engine, needs):
    m = lsa_engine.match(needs.iloc[:2], k=40)
    for i in range(2):
        assert sorted(result_ids(m, i)) == sorted(lsa_engine.records_["id"])
        assert (m.indices[i, 24:] == -1).all() and np.isnan(m.scores[i, 24:]).all()


def test_k_must_be_positive(lsa_engine):
    with pytest.raises(ValueError, match="k must be"):
        lsa_engine.match("钛合金", k=0)


def test_plain_string_queries(lsa_engine, achievements):
    m = lsa_engine.match("集成电路芯片封装测试", k=3)
    assert m.query_ids == ["q1"]
    assert industry_of(achievements)[m.ids[0, 0]] == ["C3973"]
    m = lsa_engine.match(["钛合金锻件热处理", "低乳糖液体乳"], k=2)
    assert m.query_ids == ["q1", "q2"]
    assert m.ids[0, 0] == "A06" and m.ids[1, 0] == "A21"
    # A query with no industry or region: agreement is 'unknown', not 'none'.
    e = m.explanations[0][0]
    assert e["industry_agreement"] == "unknown" and e["region_agreement"] == "unknown"


def test_query_rows_failing_validation_are_reported(lsa_engine):
    m = lsa_engine.match([{"id": "x", "title": ""}, {"id": "y", "title": "钛合金粉末"},
                          {"id": "z", "title": "锂电池", "industry": "C9999"}], k=2)
    assert m.query_ids == ["y"]
    assert sorted((r.row, r.field) for r in m.rejected) == [(1, "title"), (3, "industry")]


def test_dense_weight_zero_ranks_by_bm25(achievements, needs):
    engine = MatchEngine(EngineConfig(encoder="lsa"), dense_weight=0.0).index(achievements)
    m = engine.match(needs, k=8)
    for row in m.explanations:
        bm25 = [e["bm25_score"] for e in row if e["bm25_score"] > 0]
        assert bm25 == sorted(bm25, reverse=True)
        assert row[0]["bm25_rank"] == 1


def test_dense_weight_one_ranks_by_dense(achievements, needs):
    engine = MatchEngine(EngineConfig(encoder="lsa"), dense_weight=1.0).index(achievements)
    m = engine.match(needs, k=8)
    for row in m.explanations:
        dense = [e["dense_score"] for e in row]
        assert dense == sorted(dense, reverse=True)
        assert row[0]["dense_rank"] == 1


def test_index_rejects_and_bad_arguments(achievements):
    rows = achievements[["id", "title", "description", "industry", "region"]].head(4).to_dict("records")
    rows[1]["industry"] = ["C3973"]
    rows.append({"id": "A01", "title": "重复"})
    rows.append({"id": "Z1", "title": ""})
    engine = MatchEngine(EngineConfig(encoder="lsa")).index(rows)
    assert len(engine) == 4
    assert sorted((r.row, r.field) for r in engine.rejected_) == [(5, "id"), (6, "title")]
    with pytest.raises(ValueError, match="no usable records"):
        MatchEngine(EngineConfig(encoder="lsa")).index([{"id": "1", "title": ""}])
    with pytest.raises(ValueError, match="side"):
        MatchEngine(EngineConfig(encoder="lsa")).index(rows, side="companies")
    with pytest.raises(ValueError, match="unknown encoder"):
        MatchEngine(EngineConfig(encoder="word2vec")).index(rows)


# ---- filters ---------------------------------------------------------------------------------------------------
FILTER_CASES = [
    pytest.param({"industry": ["C32"]}, C32, id="dict-industry-C32"),
    pytest.param("industry=C32", C32, id="str-industry-C32"),
    pytest.param(["industry=32"], C32, id="list-industry-digits"),
    pytest.param({"industry": "有色金属冶炼和压延加工业"}, C32, id="industry-by-name"),
    pytest.param("region=陕北", SHAANBEI, id="region-group"),
    pytest.param({"region": ["西安市"]}, XIAN, id="region-city"),
    pytest.param("region=高新区", HIGH_TECH_ZONE, id="region-district"),
    pytest.param("maturity=中试", PILOT, id="maturity"),
    pytest.param({"transfer_mode": "许可"}, LICENSE, id="transfer-mode"),
    pytest.param(["industry=C32", "region=陕北"], C32 & SHAANBEI, id="and-of-two"),
    pytest.param(["industry=39,C27", "region=关中"], IC_OR_PHARMA_GUANZHONG, id="or-within-and-across"),
    pytest.param({"industry": "C3240", "maturity": ["中试", "实验室"]}, {"A07", "A10"}, id="xiaolei-and-maturity"),
    pytest.param({"owner": "宝钛集团"}, {"A06"}, id="metadata-column"),
    pytest.param({"industry": "A01"}, set(), id="keeps-nothing"),
]


@pytest.mark.parametrize(("filters", "kept"), FILTER_CASES)
@pytest.mark.parametrize("k", [3, 10])
def test_filters_never_leak_and_fill_k(lsa_engine, needs, filters, kept, k):
    m = lsa_engine.match(needs, k=k, filters=filters)
    assert len(m) == len(needs)
    for i in range(len(m)):
        ids = result_ids(m, i)
        assert set(ids) <= kept, (m.query_ids[i], set(ids) - kept)
        assert len(ids) == min(k, len(kept))


def test_filter_mask_matches_hand_derived_sets(achievements):
    for spec, kept in [("industry=C32", C32), ("region=陕北", SHAANBEI), ("maturity=中试", PILOT)]:
        keep = mask(achievements, parse([spec]))
        assert set(achievements["id"][keep]) == kept
    assert mask(achievements, parse(None)) is None


def test_filters_with_the_default_encoder(use_engine, needs):
    m = use_engine.match(needs, k=10, filters=["industry=39,C27", "region=关中"])
    for i in range(len(m)):
        assert set(result_ids(m, i)) == IC_OR_PHARMA_GUANZHONG  # 7 kept < k: every kept record comes back


def test_filter_parse_normalises():
    assert parse(["industry=39，C27", "region=关中"]) == {"industry": ["C39", "C27"], "region": ["关中"]}
    assert parse({"industry": ["c3973"], "maturity": "中试,小试"}) == {"industry": ["C3973"],
                                                                    "maturity": ["中试", "小试"]}
    assert parse(["industry=C39", "industry=C27"]) == {"industry": ["C39", "C27"]}


@pytest.mark.parametrize(("spec", "message"), [
    (["industry"], "key=value"),
    (["industry="], "no value"),
    (["industry=ZZ99"], "unknown GB/T 4754-2017 code"),
    ({"industry": "集成电路"}, "nearest by name"),
])
def test_bad_filters_are_clear_errors(spec, message):
    with pytest.raises(FilterError, match=message):
        parse(spec)


def test_unknown_filter_key(lsa_engine):
    with pytest.raises(FilterError, match="unknown filter 'colour'"):
        lsa_engine.match("钛合金", filters={"colour": "red"})


# ---- explanations ----------------------------------------------------------------------------------------------
def test_explanations_carry_every_signal(lsa_engine, needs, achievements):
    m = lsa_engine.match(needs, k=5)
    recs = achievements.set_index("id")
    need_text = {r.id: normalize(f"{r.title} {' '.join(r.keywords)} {r.description}").lower()
                 for r in needs.itertuples()}
    for i, qid in enumerate(m.query_ids):
        assert len(m.explanations[i]) == 5
        for j, e in enumerate(m.explanations[i]):
            assert set(e) >= EXPLANATION_KEYS
            assert e["industry_agreement"] in ("小类", "中类", "大类", "门类", "none")
            assert e["region_agreement"] in ("city", "group", "none")
            doc = recs.loc[m.ids[i, j]]
            doc_text = normalize(f"{doc['title']} {' '.join(doc['keywords'])} {doc['description']}").lower()
            for word, weight in e["shared_keywords"]:
                assert word in need_text[qid] and word in doc_text, word
                assert weight > 0
            weights = [w for _, w in e["shared_keywords"]]
            assert weights == sorted(weights, reverse=True)
            if e["shared_keywords"]:
                assert e["bm25_score"] > 0  # a shared term means a BM25 score
            if e["bm25_score"] == 0:
                assert e["bm25_rank"] is None
            assert -1.0 - 1e-6 <= e["dense_score"] <= 1.0 + 1e-6
        # Signal ranks order their scores.
        for key in ("bm25", "dense"):
            ranked = sorted((e[f"{key}_rank"], e[f"{key}_score"]) for e in m.explanations[i]
                            if e[f"{key}_rank"] is not None)
            scores = [s for _, s in ranked]
            assert scores == sorted(scores, reverse=True)


def test_explanation_of_an_obvious_match(lsa_engine, needs):
    m = lsa_engine.match(needs[needs["id"] == "N01"], k=3)
    assert m.ids[0, 0] == "A01"
    e = m.explanations[0][0]
    assert e["industry_agreement"] == "小类"  # C3973 both
    assert e["region_agreement"] == "city"  # 西安市高新区 both
    assert e["bm25_rank"] == 1 and e["dense_rank"] == 1
    words = {w for w, _ in e["shared_keywords"]}
    assert "封装" in words
    assert len(e["shared_keywords"]) <= lsa_engine.config.n_keywords


def test_region_and_industry_agreement_levels(lsa_engine, needs):
    m = lsa_engine.match(needs[needs["id"] == "N08"], k=24)  # 渭南 (关中), C1441
    by_id = dict(zip(result_ids(m), m.explanations[0], strict=True))
    assert by_id["A22"]["region_agreement"] == "group"  # 咸阳: also 关中
    assert by_id["A23"]["region_agreement"] == "none"  # 榆林: 陕北
    assert by_id["A22"]["industry_agreement"] == "小类"
    assert by_id["A01"]["industry_agreement"] == "门类"  # C3973 vs C1441: both manufacturing only


def test_explain_matches_false(lsa_engine, needs):
    m = lsa_engine.match(needs, k=3, explain_matches=False)
    assert m.explanations == []
    full = lsa_engine.match(needs, k=3)
    np.testing.assert_array_equal(m.ids, full.ids)
    frame = m.to_frame()
    assert "shared_keywords" not in frame.columns and len(frame) == 24


def test_to_frame_columns_and_metadata(lsa_engine, needs):
    m = lsa_engine.match(needs, k=3)
    frame = m.to_frame(needs, lsa_engine.records_)
    assert list(frame.columns[:4]) == ["need_id", "achievement_id", "rank", "score"]
    assert set(frame.columns) >= EXPLANATION_KEYS
    for col in ("need_title", "achievement_title", "achievement_industry", "achievement_region",
                "achievement_maturity", "achievement_transfer_mode", "achievement_owner", "need_company"):
        assert col in frame.columns, col
    assert len(frame) == 24
    assert frame.groupby("need_id")["rank"].apply(list).map(lambda r: r == [1, 2, 3]).all()
    first = frame.iloc[0]
    assert (first["need_id"], first["achievement_id"]) == ("N01", "A01")
    assert first["achievement_owner"] == "西安电子科技大学" and first["need_company"] == "西安某半导体公司"
    assert first["achievement_industry"] == "C3973"
    assert isinstance(first["shared_keywords"], str) and ":" in first["shared_keywords"]


# ---- two-way ---------------------------------------------------------------------------------------------------
def test_two_way_matching(achievements, needs):
    config = EngineConfig(encoder="lsa")
    m, engine = match_records(achievements, needs, direction="achievements", k=3, config=config)
    assert engine.side_ == "needs" and len(engine) == 8
    assert m.query_side == "achievements"
    assert m.query_ids == achievements["id"].tolist()
    assert set(m.ids.ravel()) <= set(needs["id"])
    best = dict(zip(m.query_ids, m.ids[:, 0], strict=True))
    for need, ach in BEST.items():
        assert best[ach] == need, (ach, best[ach])
    frame = m.to_frame(achievements, engine.records_)
    assert list(frame.columns[:4]) == ["achievement_id", "need_id", "rank", "score"]
    assert "need_company" in frame.columns and "achievement_owner" in frame.columns

    forward, fwd_engine = match_records(achievements, needs, k=3, config=config)
    assert fwd_engine.side_ == "achievements" and forward.query_side == "needs"
    assert forward.query_ids == needs["id"].tolist()
    with pytest.raises(ValueError, match="direction"):
        match_records(achievements, needs, direction="both", config=config)


def test_filters_apply_to_needs_in_reverse_direction(achievements, needs):
    m, _ = match_records(achievements, needs, direction="achievements", k=5, filters="region=陕北",
                         config=EngineConfig(encoder="lsa"))
    for i in range(len(m)):
        assert set(result_ids(m, i)) == {"N03", "N06"}  # the needs in 榆林 and 延安


# ---- threads ---------------------------------------------------------------------------------------------------
QUERIES = ["集成电路芯片封装", "钛合金锻件热处理", "锂离子电池正极材料", "原料药合成", "低乳糖液体乳", "羊奶脱膻",
           "GaN功率器件", "动力电池回收", "3D打印钛合金粉末", "光刻胶", "益生菌发酵", "电池管理系统BMS",
           "硬质合金刀具", "抗生素酶法", "晶型筛选", "超高温灭菌", "模数转换芯片", "医用钛合金涂层", "固态电解质",
           "中药提取纯化"]


@pytest.mark.parametrize("engine_name", ["lsa_engine", "use_engine"])
def test_thread_safety(request, engine_name):
    engine = request.getfixturevalue(engine_name)
    filters = [None, "region=关中"]

    def run(_: int) -> list[tuple[list, list]]:
        out = []
        for n, q in enumerate(QUERIES):
            m = engine.match(q, k=5, filters=filters[n % 2])
            out.append((list(m.ids[0]), m.scores[0].tolist(), m.explanations[0]))
        return out

    serial = run(0)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, range(8)))
    assert all(r == serial for r in results)


# ---- persistence -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("engine_name", ["lsa_engine", "use_engine"])
def test_save_load_roundtrip(request, tmp_path, engine_name, needs):
    engine = request.getfixturevalue(engine_name)
    path = engine.save(tmp_path / "idx")
    loaded = MatchEngine.load(path)
    assert loaded.config == engine.config
    assert loaded.side_ == engine.side_ and len(loaded) == len(engine)
    for filters in (None, ["industry=C38,C14"]):
        a = engine.match(needs, k=6, filters=filters)
        b = loaded.match(needs, k=6, filters=filters)
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_array_equal(a.scores, b.scores)
        assert a.explanations == b.explanations
    pd.testing.assert_frame_equal(a.to_frame(needs, engine.records_), b.to_frame(needs, loaded.records_))
    assert loaded.records_["owner"].tolist() == engine.records_["owner"].tolist()
    assert loaded.records_["industry"].tolist() == engine.records_["industry"].tolist()


def test_manifest_contents(tmp_path, lsa_engine):
    path = lsa_engine.save(tmp_path / "idx")
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format"] == "qcy-match-index" and manifest["format_version"] == 4
    assert manifest["counts"]["records"] == 24
    assert manifest["side"] == "achievements"
    assert manifest["encoder"]["name"] == "lsa"
    assert EngineConfig.from_dict(manifest["config"]) == lsa_engine.config
    listed = set(manifest["files"])
    assert listed == {p.name for p in path.iterdir()} - {"manifest.json"}
    assert not any(name.endswith((".pkl", ".pickle")) for name in listed)


def test_save_overwrites_an_index_and_leaves_no_temporaries(tmp_path, lsa_engine):
    target = tmp_path / "idx"
    lsa_engine.save(target)
    lsa_engine.save(target)
    assert MatchEngine.load(target).records_["id"].tolist() == lsa_engine.records_["id"].tolist()
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]


def test_save_refuses_to_overwrite_other_directories(tmp_path, lsa_engine):
    target = tmp_path / "mydata"
    target.mkdir()
    (target / "precious.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(IndexFormatError, match="refusing to overwrite"):
        lsa_engine.save(target)
    assert (target / "precious.txt").read_text(encoding="utf-8") == "keep me"


@pytest.fixture
def saved(tmp_path, lsa_engine):
    return lsa_engine.save(tmp_path / "idx")


def _flip_byte(path, offset: int = -20) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_manifest(path, **changes) -> None:
    m = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    m.update(changes)
    (path / "manifest.json").write_text(json.dumps(m), encoding="utf-8")


def test_load_refuses_missing_directory(tmp_path):
    with pytest.raises(IndexFormatError, match="no such index directory"):
        MatchEngine.load(tmp_path / "nope")


def test_load_refuses_missing_manifest(saved):
    (saved / "manifest.json").unlink()
    with pytest.raises(IndexFormatError, match="not a qcy-match index"):
        MatchEngine.load(saved)


def test_load_refuses_invalid_manifest(saved):
    (saved / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexFormatError, match="not valid JSON"):
        MatchEngine.load(saved)


@pytest.mark.parametrize("name", ["vectors.npy", "records.parquet", "bm25_data.npy"])
def test_load_refuses_truncated_file(saved, name):
    data = (saved / name).read_bytes()
    (saved / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexFormatError, match=f"{name} has .* bytes.*truncated"):
        MatchEngine.load(saved)


@pytest.mark.parametrize("name", ["vectors.npy", "records.parquet", "bm25_vocab.json", "lsa_components.npy"])
def test_load_refuses_flipped_byte(saved, name):
    _flip_byte(saved / name)
    with pytest.raises(IndexFormatError, match=f"{name} fails its SHA-256 check"):
        MatchEngine.load(saved)


def test_load_refuses_wrong_format_version(saved):
    _edit_manifest(saved, format_version=99)
    with pytest.raises(IndexFormatError, match="format version 99.*rebuild"):
        MatchEngine.load(saved)


def test_load_refuses_foreign_format(saved):
    _edit_manifest(saved, format="something-else")
    with pytest.raises(IndexFormatError, match="expected 'qcy-match-index'"):
        MatchEngine.load(saved)


@pytest.mark.parametrize("name", ["vectors.npy", "bm25_vocab.json"])
def test_load_refuses_missing_file(saved, name):
    (saved / name).unlink()
    with pytest.raises(IndexFormatError, match=f"{name} listed in the manifest is missing"):
        MatchEngine.load(saved)


def test_load_refuses_manifest_without_files(saved):
    _edit_manifest(saved, files={})
    with pytest.raises(IndexFormatError, match="lists no files"):
        MatchEngine.load(saved)


def _manifest(path) -> dict:
    return json.loads((path / "manifest.json").read_text(encoding="utf-8"))


def test_load_refuses_inconsistent_counts(saved):
    _edit_manifest(saved, counts={**_manifest(saved)["counts"], "records": 23})
    with pytest.raises(IndexFormatError, match="counts disagree"):
        MatchEngine.load(saved)


def test_load_refuses_unknown_config_keys(saved):
    _edit_manifest(saved, config={**_manifest(saved)["config"], "bogus_option": 1})
    with pytest.raises(IndexFormatError, match="bogus_option"):
        MatchEngine.load(saved)


def test_unverified_load_of_a_damaged_file_is_still_an_index_error(saved, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(saved, copy)
    (copy / "bm25_vocab.json").write_text("[]", encoding="utf-8")  # wrong size too, so size check catches it
    with pytest.raises(IndexFormatError):
        MatchEngine.load(copy, verify=False)


def test_loaded_tokens_are_shared_objects(tmp_path, achievements):
    engine = MatchEngine(EngineConfig(encoder="lsa")).index(achievements)
    engine.save(tmp_path / "idx")
    loaded = MatchEngine.load(tmp_path / "idx")
    assert loaded.tokens_ == engine.tokens_
    seen: dict[str, str] = {}
    for doc in loaded.tokens_:
        for t in doc:
            assert seen.setdefault(t, t) is t
