"""Budgeted BM25 candidate generation (SparseIndex.top(..., budget=B)) on CSL, against the exact full scan.

A budget that covers a query's postings gives the exact list; a small one may change which documents are found but
never their scores (exact BM25), and keeps the contracts of ``mask`` (only kept, live positions) and ``also``
(exact scores of another retriever's candidates), on an index with live updates too.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from conftest import CSL as CSL_PATH
from conftest import count_outcomes, full_scan_top

from qcy_match import EngineConfig
from qcy_match.index import sparse as sparse_mod
from qcy_match.index.sparse import SparseIndex
from qcy_match.match import query
from qcy_match.text import Tokenizer

pytestmark = pytest.mark.skipif(not CSL_PATH.is_file(), reason="CSL data not found")


@pytest.fixture(scope="module")
def tokens() -> tuple[list[list[str]], list[list[str]]]:
    """Document tokens of title + abstract, and query tokens of 40 abstracts and 10 titles."""
    rows = [json.loads(line) for line in CSL_PATH.read_text(encoding="utf-8").splitlines()]
    tok = Tokenizer()
    docs = [tok.tokenize(f"{r['title']} {r['abstract']}") for r in rows]
    queries = [tok.tokenize(r["abstract"], search_mode=False) for r in rows[7::50]]
    queries += [tok.tokenize(r["title"], search_mode=False) for r in rows[3::200]]
    return docs, queries


@pytest.fixture
def counted(monkeypatch):
    """Impact lists from 16 postings (a corpus of 2,000 has few lists over the default 128), the budgeted path
    taken whenever the long lists exceed the budget; counts the queries it answered and those it left to the full
    scan."""
    monkeypatch.setattr(sparse_mod, "IMPACT_MIN", 16)
    monkeypatch.setattr(sparse_mod, "BUDGET_SCAN_RATIO", 1)
    return count_outcomes(monkeypatch, SparseIndex, "_budget_candidates", "budgeted")


def indexes(docs: list[list[str]]) -> tuple[SparseIndex, SparseIndex]:
    """A fresh index and one after live updates (deletes in the main segment, a delta of added documents)."""
    base = SparseIndex().fit(docs[:1800])
    deleted = np.random.default_rng(0).choice(1800, 150, replace=False)
    return base, base.updated(add=docs[1800:], delete=deleted)


def test_a_budget_covering_the_postings_gives_the_exact_list(tokens, counted):
    docs, queries = tokens
    for ix in indexes(docs):
        mask = np.random.default_rng(1).random(len(ix)) < 0.3
        also = np.arange(0, len(ix), 37)
        for q in queries:
            for m in (None, mask):
                j, v, a = ix.top(q, 20, m, also=also, budget=10**9)
                fj, fv = full_scan_top(ix, q, 20, m)
                np.testing.assert_array_equal(j, fj)
                np.testing.assert_array_equal(v, fv)
                np.testing.assert_array_equal(a, ix.scores(q)[also])
    assert counted["budgeted"] == 0


def test_a_small_budget_keeps_scores_exact_and_the_contracts(tokens, counted):
    docs, queries = tokens
    overlaps = []
    for ix in indexes(docs):
        rng = np.random.default_rng(2)
        mask = rng.random(len(ix)) < 0.5
        live = np.ones(len(ix), bool) if ix.alive_ is None else ix.alive_
        also = rng.choice(len(ix), 60, replace=False)
        for q in queries:
            s = ix.scores(q)
            for m in (None, mask):
                j, v, a = ix.top(q, 20, m, also=also, budget=300)
                np.testing.assert_array_equal(v, s[j])  # exact BM25, the bits of the full scan
                np.testing.assert_array_equal(a, s[also])
                assert (v > 0).all() and live[j].all() and (m is None or m[j].all())
                assert len(np.unique(j)) == len(j)
                # Best first, lower position on ties.
                assert np.array_equal(np.lexsort((j, -v)), np.arange(len(j)))
                fj, _ = full_scan_top(ix, q, 20, m)
                assert len(j) == min(20, len(fj))  # never a short list
                overlaps.append(len(np.intersect1d(j[:10], fj[:10])) / max(len(fj[:10]), 1))
    # The budget was binding for most queries, and the lists stay close to the exact ones.
    assert counted["budgeted"] > counted["scanned"]
    print("budgeted", counted, "mean top-10 overlap", np.mean(overlaps))
    assert np.mean(overlaps) >= 0.9


def test_updates_reach_budgeted_search(tokens, counted):
    docs, queries = tokens
    base, live = indexes(docs)
    gone = np.flatnonzero(~live.alive_)
    # A deleted document's own text no longer finds it; an added one's finds it first.
    for d in gone[:10]:
        assert d not in live.top(docs[d], 10, budget=300)[0]
        assert d in base.top(docs[d], 10, budget=300)[0]
    for d in range(1800, 1810):
        assert live.top(docs[d], 10, budget=300)[0][0] == d
    assert counted["budgeted"] > 0


def test_engine_config_sets_the_budget(tokens, counted):
    docs, queries = tokens
    ix = SparseIndex().fit(docs)
    cfg = EngineConfig.from_dict({"sparse_budget": 300})
    also = np.arange(5)
    for q in queries[:10]:
        got = query.sparse_top(ix, q, 20, None, also, cfg, lambda p: docs[p])
        want = ix.top(q, 20, None, also=also, budget=300)
        for x, y in zip(got, want, strict=True):
            np.testing.assert_array_equal(x, y)
        ex = query.sparse_top(ix, q, 20, None, also, dataclasses.replace(cfg, sparse_budget=0), lambda p: docs[p])
        np.testing.assert_array_equal(ex[0], full_scan_top(ix, q, 20, None)[0])


def test_a_batch_returns_what_the_same_queries_return_one_at_a_time(tokens, counted):
    """top_many under a budget: the queries the budget reads go through top(budget=), the others through the
    sparse product, and every list, score and ``also`` score equals the single-query call's."""
    docs, queries = tokens
    ix = indexes(docs)[1]
    rng = np.random.default_rng(3)
    also = [rng.integers(0, len(ix), 20) for _ in queries]
    mask = rng.random(len(ix)) < 0.6
    for m in (None, mask):
        got = ix.top_many(queries, 10, m, also, budget=300)
        for q, a, (gi, gv, ga) in zip(queries, also, got, strict=True):
            wi, wv, wa = ix.top(q, 10, m, also=a, budget=300)
            assert np.array_equal(gi, wi) and np.array_equal(gv, wv) and np.array_equal(ga, wa), q[:5]
    # both routes were taken: some queries read by budget, some left to the product
    routes = {ix._budget_reads(ix._query_terms(q), None, 300) for q in queries if ix._query_terms(q)}
    assert routes == {True, False} and counted["budgeted"] > 0
