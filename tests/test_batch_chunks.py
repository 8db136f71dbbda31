"""Chunked batch scoring (SparseIndex.top_many, MatchEngine._pools) against one query at a time.

``top_many`` scores a chunk of queries as one sparse product that adds the same float32 terms in the same order as
``SparseIndex.top``'s scan, so the two must agree bit for bit: positions, scores, ties and the scores of ``also``.
The engine's batch must then give exactly what it gives one query at a time, and what the per-query scorer gives.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qcy_match import EngineConfig, MatchEngine, load_records
from qcy_match.index import sparse as sparse_mod
from qcy_match.index.sparse import SparseIndex
from qcy_match.text import Tokenizer

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("QCY_SHARED_DATA", ROOT.parent / "shared" / "data"))
CSL = SHARED / "csl" / "csl_2000.jsonl"


def one_by_one(self: SparseIndex, queries, k, mask=None, also=None, budget=0):
    """What the engine did before top_many: SparseIndex.top per query."""
    return [self.top(q, k, mask, also=None if also is None else also[i], budget=budget)
            for i, q in enumerate(queries)]


def assert_top_many_equals_top(ix: SparseIndex, queries: list[list[str]], k: int, mask: np.ndarray | None,
                               rng: np.random.Generator) -> None:
    also = [rng.integers(0, len(ix), int(rng.integers(0, 30))) for _ in queries]
    got = ix.top_many(queries, k, mask, also)
    want = one_by_one(ix, queries, k, mask, also)
    assert len(got) == len(want) == len(queries)
    for q, (gi, gv, ga), (wi, wv, wa) in zip(queries, got, want, strict=True):
        assert np.array_equal(gi, wi), q[:5]
        assert gv.dtype == wv.dtype == np.float32
        assert np.array_equal(gv, wv) and np.array_equal(ga, wa), q[:5]  # bit for bit, not within a tolerance


@pytest.fixture(scope="module")
def csl_tokens() -> tuple[list[list[str]], list[list[str]]]:
    if not CSL.is_file():
        pytest.skip("CSL data not found (set QCY_SHARED_DATA)")
    papers = [json.loads(line) for line in CSL.open(encoding="utf-8")][:1300]
    tok = Tokenizer()
    docs = [tok.tokenize(p["title"] + " " + p["abstract"]) for p in papers[:1000]]
    # Titles, keyword lists and whole abstracts (long queries with repeated terms), an empty query and one of
    # unknown words only.
    queries = ([tok.tokenize(p["title"], search_mode=False) for p in papers[1000:1100]]
               + [tok.tokenize(" ".join(p["keywords"]), search_mode=False) for p in papers[1100:1150]]
               + [tok.tokenize(p["abstract"], search_mode=False) for p in papers[1150:1300]]
               + [[], ["没有这个词的词"]])
    return docs, queries


def test_top_many_equals_top_on_csl(csl_tokens, monkeypatch):
    docs, queries = csl_tokens
    rng = np.random.default_rng(7)
    # A budget of a few queries per chunk, so chunk boundaries are crossed.
    monkeypatch.setattr(sparse_mod, "CHUNK_BYTES", 12 * 1000 * 7)
    ix = SparseIndex(1.2, 0.6).fit(docs)
    mask = rng.random(len(ix)) < 0.2
    for k in (1, 10, 100):
        assert_top_many_equals_top(ix, queries, k, None, rng)
    assert_top_many_equals_top(ix, queries, 10, mask, rng)
    # After live updates: a delta segment with new terms, deletes in both segments, then other statistics.
    up = ix.updated(add=docs[:40] + [["全新的词", "另一个新词"]], delete=rng.choice(len(ix), 60, replace=False))
    up = up.updated(delete=[len(ix) + 3, len(ix) + 7])
    queries2 = queries + [["全新的词", "另一个新词", "全新的词"]]
    mask2 = rng.random(len(up)) < 0.5
    assert_top_many_equals_top(up, queries2, 10, None, rng)
    assert_top_many_equals_top(up, queries2, 100, mask2, rng)
    shard = up.with_stats(up.df_ * 2, up.n_docs_ * 2, up.stats().avgdl * 1.1)
    assert_top_many_equals_top(shard, queries2, 10, mask2, rng)
    # An index with no live document scores nothing.
    empty = ix.updated(delete=np.arange(len(ix)))
    assert all(len(i) == 0 for i, _, _ in empty.top_many(queries[:5], 10))


def assert_same_matches(a, b) -> None:
    assert a.query_ids == b.query_ids
    assert a.ids.shape == b.ids.shape
    assert (pd.DataFrame(a.ids).fillna("") == pd.DataFrame(b.ids).fillna("")).all().all()
    assert np.array_equal(a.scores, b.scores, equal_nan=True)
    assert np.array_equal(a.confidence, b.confidence, equal_nan=True)
    assert a.explanations == b.explanations


def check_engine(engine: MatchEngine, queries: pd.DataFrame, filters, monkeypatch) -> None:
    batch = engine.match(queries, k=10, filters=filters)
    singles = [engine.match(queries.iloc[[i]], k=10, filters=filters) for i in range(len(queries))]
    for i, one in enumerate(singles):
        assert list(one.ids[0]) == list(batch.ids[i]), i
        # A query's dense scores may differ in the last bits with the size of the matrix product that computed
        # them (BLAS blocking), so alone a query's fused scores agree within float tolerance, and a dense rank
        # among exactly tied dense scores may move.
        assert np.allclose(one.scores[0], batch.scores[i], atol=1e-6, equal_nan=True), i
        for e, f in zip(map(dict, one.explanations[0]), map(dict, batch.explanations[i]), strict=True):
            assert abs(e.pop("dense_score") - f.pop("dense_score")) <= 1e-4
            assert e.pop("dense_rank") is None or f.pop("dense_rank") is not None
            f.pop("dense_rank", None)
            assert e == f, i
    with monkeypatch.context() as m:
        m.setattr(SparseIndex, "top_many", one_by_one)
        per_query = engine.match(queries, k=10, filters=filters)
    assert_same_matches(batch, per_query)


def test_engine_batch_equals_one_by_one_on_demo_corpus(monkeypatch):
    ach, _ = load_records(ROOT / "corpora" / "achievements.jsonl")
    needs, _ = load_records(ROOT / "corpora" / "needs.jsonl")
    monkeypatch.setattr(sparse_mod, "CHUNK_BYTES", 12 * len(ach) * 9)
    engine = MatchEngine(EngineConfig(encoder="lsa")).index(ach)
    for filters in (None, {"industry": ["C"]}, {"region": "关中", "industry": "C34"}):
        check_engine(engine, needs, filters, monkeypatch)
    # After live updates (a delta segment and deletes), and in the other direction.
    engine.delete(ach["id"].iloc[::7])
    engine.add(needs.iloc[:15].assign(id=["new" + str(i) for i in needs["id"].iloc[:15]]))
    check_engine(engine, needs, None, monkeypatch)
    check_engine(engine, needs, {"industry": ["C"]}, monkeypatch)
    reverse = MatchEngine(EngineConfig(encoder="lsa")).index(needs, side="needs")
    check_engine(reverse, ach.iloc[::2], None, monkeypatch)
    reverse.delete(needs["id"].iloc[:10])
    check_engine(reverse, ach.iloc[::2], {"industry": ["C"]}, monkeypatch)
