"""The buyer-language need set (corpora/buyer_needs.jsonl) and the query-side logic (qcy_match.match.query) on CSL."""

from __future__ import annotations

import dataclasses
import json
import random
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from qcy_match import EngineConfig, MatchEngine
from qcy_match.match import query

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import metrics  # noqa: E402
from benchmarks.buyer_needs import NEEDS, buyer_datasets, load_needs  # noqa: E402
from benchmarks.datasets import default_data, load_csl  # noqa: E402
from benchmarks.quality import run_searcher  # noqa: E402

CSL = default_data() / "csl" / "csl_2000.jsonl"
needs_csl = pytest.mark.skipif(not CSL.is_file(), reason="CSL not found (set QCY_SHARED_DATA)")


def test_need_set_loads_and_is_split_as_documented():
    needs = load_needs()
    assert len(needs) >= 80 and needs["target"].is_unique
    assert set(needs["split"]) == {"dev", "test"}
    # README: within each category (sorted by name, rows in file order), shuffled with random.Random(17); the first
    # round(0.4·n) go to dev.
    rng = random.Random(17)
    for cat in sorted(set(needs["category"])):
        rows = needs[needs["category"] == cat]["id"].tolist()
        rng.shuffle(rows)
        dev = set(rows[:round(0.4 * len(rows))])
        assert set(needs[(needs["category"] == cat) & (needs["split"] == "dev")]["id"]) == dev, cat
    assert len(set(needs["category"])) == 13
    assert 0.35 <= (needs["split"] == "dev").mean() <= 0.45


def test_load_needs_names_row_and_field(tmp_path):
    rows = NEEDS.read_text(encoding="utf-8").splitlines()[:3]
    bad = json.loads(rows[1])
    bad["split"] = "train"
    path = tmp_path / "n.jsonl"
    path.write_text("\n".join([rows[0], json.dumps(bad, ensure_ascii=False)]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"row 2: field split"):
        load_needs(path)


@needs_csl
def test_every_target_is_a_csl_record_of_its_category():
    papers, _ = load_csl(default_data())
    cat = {p["id"]: p["category"] for p in papers}
    needs = load_needs()
    assert all(cat.get(t) == c for t, c in zip(needs["target"], needs["category"], strict=True))
    assert len(set(needs["category"])) == len(set(cat.values()))
    reverse = buyer_datasets(default_data())[-1]
    assert set(reverse.queries["id"]) == set(needs["target"]) and set(needs["id"]) < set(reverse.corpus["id"])
    assert reverse.corpus["id"].is_unique


@pytest.fixture(scope="module")
def csl_engine():
    if not CSL.is_file():
        pytest.skip("CSL not found (set QCY_SHARED_DATA)")
    ds = buyer_datasets(default_data())[0]
    return MatchEngine(EngineConfig()).index(ds.corpus), ds


def test_full_query_text_is_what_the_dense_encoder_reads(csl_engine):
    engine, ds = csl_engine
    q = ds.queries.head(3)
    texts = [f"{t} {d}" for t, d in zip(q["title"], q["description"], strict=True)]

    def as_indexed():
        return list(q["title"]), [[] for _ in texts]

    assert query.dense_input(engine.config, texts, list, as_indexed)[0] == texts
    assert query.dense_input(dataclasses.replace(engine.config, query_dense_text="index"), texts, list,
                             as_indexed)[0] == list(q["title"])
    with pytest.raises(ValueError, match="query_dense_text"):
        query.dense_input(dataclasses.replace(engine.config, query_dense_text="both"), texts, list, as_indexed)


def test_feedback_adds_terms_of_the_best_documents(csl_engine):
    engine, ds = csl_engine
    need = ds.queries.iloc[0]
    tokens = engine.tokenizer_.tokenize(f"{need['title']} {need['description']}", normalized=True,
                                        search_mode=False)
    first = engine.sparse_.scores(tokens)
    model = query.expansion(engine.sparse_, first, lambda p: engine.tokens_[p], 5, 10)
    top = np.argsort(-first, kind="stable")[:5]
    in_top = set().union(*(engine.tokens_[int(p)] for p in top))
    assert 0 < len(model) <= 10 and set(model) <= in_top and set(model) - set(tokens)
    assert abs(sum(model.values()) - 1) < 1e-6
    # Feedback off: the plain BM25 scores; on: the feedback terms lift documents holding them.
    cfg = engine.config
    assert np.array_equal(query.sparse_scores(engine.sparse_, tokens, cfg, lambda p: engine.tokens_[p]), first)
    fb = query.sparse_scores(engine.sparse_, tokens, dataclasses.replace(cfg, prf_docs=5),
                             lambda p: engine.tokens_[p])
    heavy = max(model, key=model.__getitem__)
    holds = np.array([heavy in set(t) for t in engine.tokens_])
    assert (fb - first)[holds].mean() > (fb - first)[~holds].mean()


def test_default_beats_bm25s_on_the_dev_needs(csl_engine):
    pytest.importorskip("bm25s")
    from benchmarks.anchors import Bm25sAnchor, EngineSearcher

    engine, ds = csl_engine
    dev = ds.splits()["dev"]
    w = EngineConfig().dense_weight
    ours = metrics.mean(run_searcher(EngineSearcher(engine, "default", "minmax", w), ds), ds.qrels, dev)
    anchor = metrics.mean(run_searcher(Bm25sAnchor(ds.corpus), ds), ds.qrels, dev)
    assert ours["MRR@10"] > anchor["MRR@10"]
    assert Counter(ds.split.values())["dev"] == len(dev)
