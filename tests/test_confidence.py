"""The calibrated confidence of a match: pool-independent evidence, one value per match in every output, the
--min-confidence filter, its calibration in the manifest, and its measures."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from qcy_match import load_records
from qcy_match.errors import IndexFormatError
from qcy_match.ingest.records import from_any
from qcy_match.match import confidence as cf
from qcy_match.match.engine import MatchEngine

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo():
    achievements, _ = load_records(ROOT / "corpora/achievements.jsonl")
    needs, _ = load_records(ROOT / "corpora/needs.jsonl")
    return achievements, needs


@pytest.fixture(scope="module")
def engine(demo_analysis):
    return demo_analysis.engine


def test_every_match_has_a_confidence_in_every_output(engine, demo):
    _, needs = demo
    m = engine.match(needs.iloc[:5], k=4)
    assert m.confidence.shape == m.scores.shape
    assert ((m.confidence > 0) & (m.confidence < 1)).all()
    df = m.to_frame(needs.iloc[:5], engine.records_)
    assert list(df.columns[:5]) == ["need_id", "achievement_id", "rank", "score", "confidence"]
    assert list(df.columns).count("confidence") == 1
    assert np.allclose(df["confidence"], m.confidence.ravel(), atol=1e-4)
    assert m.explanations[0][0]["confidence"] == pytest.approx(float(m.confidence[0, 0]), abs=1e-4)


def test_confidence_does_not_depend_on_the_pool(engine, demo):
    """Unlike the score, a pair's confidence is the same whatever else the pool holds (here: a filter)."""
    _, needs = demo
    q = needs.iloc[[0]]
    full = engine.match(q, k=20, explain_matches=False)
    code = engine.records_.set_index("id").loc[full.ids[0, 3], "industry"][0]
    narrow = engine.match(q, k=20, filters={"industry": [code]}, explain_matches=False)
    both = set(full.ids[0]) & set(narrow.ids[0]) - {None}
    assert both
    conf_full = dict(zip(full.ids[0], full.confidence[0], strict=True))
    conf_narrow = dict(zip(narrow.ids[0], narrow.confidence[0], strict=True))
    score_full = dict(zip(full.ids[0], full.scores[0], strict=True))
    score_narrow = dict(zip(narrow.ids[0], narrow.scores[0], strict=True))
    assert all(conf_full[i] == pytest.approx(conf_narrow[i], abs=1e-6) for i in both)
    assert any(abs(score_full[i] - score_narrow[i]) > 1e-3 for i in both)


def test_the_search_path_and_the_pair_path_agree(engine, demo):
    _, needs = demo
    q = needs.iloc[:8].reset_index(drop=True)
    m = engine.match(q, k=5, explain_matches=False)
    feats = cf.pair_features(engine, q, [(i, m.indices[i]) for i in range(len(q))])
    cal = cf.Calibration.from_dict(engine.config.confidence)
    assert np.allclose(np.vstack([cal.predict(f) for f in feats]), m.confidence, atol=1e-5)


def test_an_unrelated_need_gets_low_confidence_though_its_score_is_high(engine, demo):
    _, needs = demo
    odd = engine.match(["城镇污水处理厂脱氮除磷提标改造，出水总氮总磷不达标"], k=1, explain_matches=False)
    own = engine.match(needs, k=1, explain_matches=False)
    assert odd.scores[0, 0] > 0.5  # scaled within its pool, the best candidate always looks good
    assert odd.confidence[0, 0] < 0.5
    assert odd.confidence[0, 0] < np.quantile(own.confidence[:, 0], 0.1)


def test_min_confidence_drops_the_matches_below_it_and_keeps_order(engine, demo):
    _, needs = demo
    full = engine.match(needs.iloc[:20], k=10)
    cut = float(np.nanmedian(full.confidence))
    kept = engine.match(needs.iloc[:20], k=10, min_confidence=cut)
    for i in range(20):
        want = [d for d, c in zip(full.ids[i], full.confidence[i], strict=True) if c >= cut]
        got = [d for d in kept.ids[i] if d is not None]
        assert got == want
        assert len(kept.explanations[i]) == len(want)
    assert (np.nan_to_num(kept.confidence, nan=1) >= cut).all()
    assert (kept.indices[np.isnan(kept.confidence)] == -1).all()
    with pytest.raises(ValueError):
        engine.match(needs.iloc[:1], min_confidence=1.5)


def test_calibration_travels_in_the_manifest_and_is_checked(engine, demo, tmp_path):
    _, needs = demo
    custom = cf.Calibration((1.0, 2.0, 3.0, 0.0, 0.5, 0.0, 0.0, 0.2, 0.3, 0.0, 0.0, 0.1), -3.0, "usem3",
                            "test").to_dict()
    engine.config.confidence = custom
    try:
        engine.save(tmp_path / "ix")
    finally:
        engine.config.confidence = {}
    loaded = MatchEngine.load(tmp_path / "ix")
    assert loaded.config.confidence == custom
    a = loaded.match(needs.iloc[:3], k=3, explain_matches=False)
    b = engine.match(needs.iloc[:3], k=3, explain_matches=False)
    assert (a.ids == b.ids).all() and not np.allclose(a.confidence, b.confidence)
    # A malformed calibration fails at load, not at the first query.
    import json

    manifest = json.loads((tmp_path / "ix/manifest.json").read_text(encoding="utf-8"))
    manifest["config"]["confidence"] = {"features": ["bm25"], "coef": [1.0], "intercept": 0.0}
    (tmp_path / "ix/manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexFormatError, match="confidence"):
        MatchEngine.load(tmp_path / "ix", verify=False)


def test_measures_agree_with_sklearn():
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.3
    s = np.where(y, rng.random(500) * 0.8 + 0.2, rng.random(500) * 0.8)
    assert cf.roc_auc(s, y) == pytest.approx(roc_auc_score(y, s))
    # A perfectly calibrated predictor (labels drawn from it) has a small ECE; a shifted one a large one.
    p = rng.random(20000)
    lab = rng.random(20000) < p
    assert cf.expected_calibration_error(p, lab) < 0.02
    assert cf.expected_calibration_error(np.clip(p + 0.2, 0, 1), lab) > 0.15


def test_fit_recovers_a_known_logistic_model():
    rng = np.random.default_rng(1)
    x = rng.random((4000, len(cf.FEATURES)))
    true = np.array([3.0, 2.0, 1.0, *[0.0] * (len(cf.FEATURES) - 3)])
    y = rng.random(4000) < 1 / (1 + np.exp(-(x @ true - 3)))
    cal = cf.fit(x, y, c=100.0)
    assert np.allclose(cal.coef[:3], true[:3], atol=0.5)
    assert cf.expected_calibration_error(cal.predict(x), y) < 0.03


def test_cli_match_writes_confidence_and_filters_it(tmp_path):
    from qcy_match.cli import main

    out = tmp_path / "m.csv"
    args = ["match", "--achievements", str(ROOT / "corpora/achievements.jsonl"), "--needs",
            str(ROOT / "corpora/needs.jsonl"), "--out", str(out), "--encoder", "lsa", "--top-k", "5"]
    assert main(args) == 0
    full = pd.read_csv(out)
    assert full["confidence"].between(0, 1).all()
    cut = float(full["confidence"].median())
    assert main([*args, "--min-confidence", str(cut)]) == 0
    kept = pd.read_csv(out)
    assert len(kept) == (full["confidence"] >= cut).sum()
    assert main([*args, "--min-confidence", "2"]) == 2


def _right_but_weak(engine, needs, relevant, cut):
    """Of the needs whose top match is one of their relevant records: the share whose confidence is below ``cut``."""
    m = engine.match(needs, k=1, explain_matches=False)
    right = np.array([str(m.ids[i, 0]) in relevant.get(q, set()) for i, q in enumerate(m.query_ids)])
    assert right.mean() > 0.5  # the engine serves most demo needs, with or without codes
    return float((m.confidence[right, 0] < cut).mean())


def test_needs_without_codes_are_not_called_weak_when_their_top_match_is_right(engine, demo, demo_analysis):
    """Real needs come without industry codes or regions. Losing them must not push needs whose top match is right
    under the weak-match line: the share called weak may grow a little against the coded needs, not flip."""
    _, needs = demo
    pairs = pd.read_csv(ROOT / "corpora/demo_pairs.csv", dtype=str)
    relevant = pairs[pairs["relevance"].astype(int) > 0].groupby("need_id")["achievement_id"].agg(set).to_dict()
    cut = demo_analysis.min_confidence
    coded = _right_but_weak(engine, needs, relevant, cut)
    raw = pd.read_json(ROOT / "corpora/needs.jsonl", lines=True, dtype=False)
    bare, rejected = from_any(raw.drop(columns=["industry", "region"]))
    assert not len(rejected) and bare["industry"].map(len).eq(0).all() and bare["region_city"].eq("").all()
    uncoded = _right_but_weak(engine, bare, relevant, cut)
    # Most right top matches stay above the line, and at most a quarter more of them fall under it than with codes.
    assert uncoded < 0.5
    assert uncoded <= coded + 0.25


def test_a_calibration_of_the_older_shape_loads_and_gives_what_it_gave(engine, demo):
    """Manifests written before ``query_terms`` existed name seven features: they load, and their zero weight on
    the new feature reproduces the old confidence; a shape that is neither fails with a message naming both."""
    _, needs = demo
    old = {"features": list(cf.OLD_FEATURES), "coef": [7.8, 7.5, 2.7, 1.0, 3.4, 1.0, 0.0], "intercept": -9.1}
    cal = cf.Calibration.from_dict(old)
    assert cal.coef == (*old["coef"], *[0.0] * (len(cf.FEATURES) - 7))
    q = needs.iloc[:4].reset_index(drop=True)
    m = engine.match(q, k=3, explain_matches=False)
    x = np.vstack(cf.pair_features(engine, q, [(i, m.indices[i]) for i in range(len(q))]))
    z = x[:, :len(cf.OLD_FEATURES)] @ np.array(old["coef"]) + old["intercept"]
    assert np.allclose(cal.predict(x), 1 / (1 + np.exp(-z)), atol=1e-6)
    assert cal.to_dict()["features"] == list(cf.FEATURES)  # saved again, it takes the current shape
    with pytest.raises(ValueError, match="query_terms.*refit it"):
        cf.Calibration.from_dict({**old, "features": list(cf.OLD_FEATURES[:6])})
    with pytest.raises(ValueError, match="7 finite coefficients"):
        cf.Calibration.from_dict({**old, "coef": old["coef"][:6]})


def test_dense_z_reads_the_cosine_against_a_background_sample_that_does_not_depend_on_the_split(engine, demo,
                                                                                                  monkeypatch):
    """The background sample is the records whose ids hash lowest: any split of the records (shards) merges to the
    same sample, and ``dense_z`` is the pair's cosine against the query's cosines with it."""
    from qcy_match.index.shards import id_hash

    _, needs = demo
    st = engine._snap
    monkeypatch.setattr(cf, "BACKGROUND", 25)
    st.derived.pop("confidence_background", None)  # drawn again with 25 records
    bg = cf.background(st)
    want = np.sort(id_hash(st.ids))[:25]
    assert len(bg.keys) == 25 and (bg.keys == want).all()
    pos = np.arange(len(st.ids)) if st.live is None else st.live  # live index → position
    halves = [cf.Background.of(st.ids[part], lambda rows, part=part: cf._vectors(st, pos[part[rows]]))
              for part in np.array_split(np.random.default_rng(0).permutation(len(st.ids)), 3)]
    merged = cf.Background.merged(halves)
    assert (merged.keys == bg.keys).all() and np.array_equal(merged.vectors, bg.vectors)
    q = needs.iloc[:6].reset_index(drop=True)
    m = engine.match(q, k=4, explain_matches=False)
    _, q_vecs = engine._query_side(q, engine._texts(q))
    sampled = pos[np.isin(id_hash(st.ids), want)]
    feats = cf.pair_features(engine, q, [(i, m.indices[i]) for i in range(len(q))])
    col = cf.FEATURES.index("dense_z")
    for i in range(len(q)):
        cos = st.dense.score(q_vecs[i], sampled).astype(np.float64)
        dense = feats[i][:, cf.FEATURES.index("dense")]
        assert np.allclose(feats[i][:, col], (dense - cos.mean()) / cos.std(), atol=1e-4)
    # The search path reads the same sample (this snapshot's, drawn above with 25 records).
    cal = cf.Calibration.from_dict(engine.config.confidence)
    assert np.allclose(np.vstack([cal.predict(f) for f in feats]), m.confidence, atol=1e-5)
    st.derived.pop("confidence_background")  # the other tests read the sample of the usual size


def test_dense_z_tells_accepted_pairs_from_rejected_ones_better_than_the_raw_cosine(engine, demo):
    """Some needs sit close to every record: read against its own background, a need's cosine ranks the accepted
    pairs of the demo needs' top 10 (over all needs at once) above the rejected ones more often than raw."""
    _, needs = demo
    pairs = pd.read_csv(ROOT / "corpora/demo_pairs.csv", dtype=str)
    relevant = pairs[pairs["relevance"].astype(int) > 0].groupby("need_id")["achievement_id"].agg(set).to_dict()
    q = needs.reset_index(drop=True)
    m = engine.match(q, k=10, explain_matches=False)
    x = np.vstack(cf.pair_features(engine, q, [(i, m.indices[i]) for i in range(len(q))]))
    y = np.array([str(d) in relevant.get(qid, set()) for qid, row in zip(m.query_ids, m.ids, strict=True)
                  for d in row])
    raw, z = (cf.roc_auc(x[:, cf.FEATURES.index(f)], y) for f in ("dense", "dense_z"))
    assert 0.1 < y.mean() < 0.3
    assert z > raw + 0.005, (raw, z)
