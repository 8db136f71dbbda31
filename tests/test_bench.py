"""The benchmark suite's pieces: synthetic data, datasets, metrics against the library, a tiny end-to-end run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import metrics, synth  # noqa: E402
from benchmarks.datasets import Dataset, csl_datasets, default_data, demo_dataset  # noqa: E402
from benchmarks.quality import run_searcher  # noqa: E402
from qcy_match import evaluate as ev  # noqa: E402
from qcy_match.ingest.records import from_any  # noqa: E402


def test_synthetic_generator_is_deterministic_and_valid():
    a = synth.generate(300, seed=7)
    assert a.equals(synth.generate(300, seed=7))
    assert not a.equals(synth.generate(300, seed=8))
    recs, rejects = from_any(a)
    assert rejects == [] and len(recs) == 300
    # Zipf skew: the most common 小类 covers far more than a uniform share of 1/len(vocabulary).
    top = a["industry"].map(lambda c: c[0]).value_counts().iloc[0]
    assert top / len(a) > 20 / len(synth.vocabulary().codes)
    assert set(recs["region_group"]) <= {"关中", "陕北", "陕南"}
    needs = synth.generate(50, seed=7, kind="needs")
    assert needs["id"].str.startswith("N").all() and not needs["title"].isin(a["title"]).all()


def test_bucket_values_keep_the_asked_share():
    a = synth.generate(4000, seed=1)
    for sel in (0.5, 0.1, 0.01):
        kept = a["bucket"].astype(str).isin(synth.bucket_values(sel)).mean()
        assert abs(kept - sel) < max(0.03, sel / 2)


def test_demo_dataset_interface():
    ds = demo_dataset()
    assert len(ds.corpus) == 320 and len(ds.queries) == 110
    assert set(ds.qrels) <= set(ds.queries["id"])
    assert all(d in set(ds.corpus["id"]) for rel in ds.qrels.values() for d in rel)
    assert ds.splits() == {"all": ds.queries["id"].tolist()}


def test_csl_datasets_split_and_judgments():
    if not (default_data() / "csl" / "csl_2000.jsonl").is_file():
        pytest.skip("CSL not found (set QCY_SHARED_DATA)")
    tasks = {d.name: d for d in csl_datasets(default_data())}
    topic = tasks["csl_topic"]
    assert set(topic.splits()) == {"dev", "test"}
    q = topic.queries["id"].iloc[0]
    assert q not in topic.qrels[q] and topic.exclude[q] == q
    assert set(topic.qrels[q].values()) <= {1, 2}
    assert tasks["csl_topic_filtered"].filters[q] == {"category": [topic.corpus.set_index("id").loc[q, "category"]]}


def test_metrics_agree_with_qcy_match_evaluate():
    pytest.importorskip("ir_measures")
    ranked = {"q1": ["b", "a", "x"], "q2": ["x", "y"], "q3": [], "q4": ["z"] + [f"d{i}" for i in range(120)]}
    qrels = {"q1": {"a": 2, "b": 1, "c": 0}, "q2": {"y": 1, "z": 2}, "q3": {"a": 1}, "q4": {"d50": 1, "d110": 2}}
    got = metrics.per_query(ranked, qrels)
    for q, rel in qrels.items():
        ids = ranked[q]
        assert got["nDCG@10"][q] == pytest.approx(ev.ndcg_at_k([ids], [rel], 10))
        assert got["MRR@10"][q] == pytest.approx(ev.mrr_at_k([ids], [rel], 10))
        assert got["R@10"][q] == pytest.approx(ev.recall_at_k([ids], [rel], 10))
        assert got["R@100"][q] == pytest.approx(ev.recall_at_k([ids], [rel], 100))
    assert got["R@100"]["q4"] == 0.5 and got["MRR@10"]["q3"] == 0.0


def test_run_searcher_groups_filters_and_drops_own_record(lsa_engine, achievements):
    from benchmarks.anchors import EngineSearcher

    corpus = achievements
    first = corpus["id"].iloc[0]
    code = corpus["industry"].iloc[0][0]
    ds = Dataset("t", "c", corpus, corpus[["id", "title"]].iloc[:3].reset_index(drop=True),
                 {first: {first: 1}}, filters={first: {"industry": [code]}}, exclude={first: first})
    ranked = run_searcher(EngineSearcher(lsa_engine, "e", "minmax", 0.4), ds, k=5)
    assert first not in ranked[first]
    kept = corpus.set_index("id")["industry"]
    assert all(any(c.startswith(code) for c in kept[d]) for d in ranked[first])


def test_end_to_end_tiny_run_writes_json_markdown_and_plots(tmp_path):
    from benchmarks import run

    rc = run.main(["--datasets", "demo", "--encoder", "lsa", "--scales", "500:lsa", "--repeat", "15",
                   "--out", str(tmp_path)])
    assert rc == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    scale = report["scales"]["500"]
    assert "error" not in scale, (tmp_path / "scale_500.log").read_text()[-2000:]
    assert scale["build"]["n"] == 500 and scale["build"]["stages_s"]["tokenise"] > 0
    assert scale["latency"]["industry_filter"]["n"] == 15
    for row in scale["filters"]["by_selectivity"].values():
        assert row["engine_recall_at_10"] == 1.0 and row["engine_short_share"] == 0.0
    demo = report["quality"]["tasks"]["demo_need_achievement"]["results"]
    default = next(v for k, v in demo.items() if k.startswith("qcy_match (default"))
    assert default["all"]["MRR@10"] > 0.8
    md = (tmp_path / "bench.md").read_text()
    assert "| 500 | lsa | flat |" in md and "demo_need_achievement" in md
    pytest.importorskip("matplotlib")
    for name in ("latency_vs_size.png", "recall_vs_selectivity.png", "quality_by_task.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
