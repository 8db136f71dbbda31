"""Pruned BM25 retrieval and injectable statistics, checked against full scans on CSL.

The pruned top-k (SparseIndex.top) must return exactly the list a full scan's top_k returns, and the engine's
results must equal a straightforward reference of the scoring it had before pruning: full BM25 array, top_k, fuse.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import count_outcomes, full_scan_top

from qcy_match import EngineConfig, MatchEngine
from qcy_match.index import sparse as sparse_mod
from qcy_match.index.sparse import SparseIndex
from qcy_match.index.topk import top_k
from qcy_match.match.fusion import fuse
from qcy_match.text import Tokenizer

CSL = Path(os.environ.get("QCY_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "csl"
pytestmark = pytest.mark.skipif(not (CSL / "csl_2000.jsonl").is_file(), reason="CSL data not found")
POOL = 100


@pytest.fixture(scope="module")
def papers() -> pd.DataFrame:
    rows = [json.loads(line) for line in (CSL / "csl_2000.jsonl").read_text(encoding="utf-8").splitlines()]
    return pd.DataFrame([{"id": r["id"], "title": r["title"], "description": r["abstract"],
                          "category": r["category"]} for r in rows])


@pytest.fixture(scope="module")
def tokens(papers) -> tuple[list[list[str]], list[list[str]]]:
    """Document tokens (search mode) of title + abstract, and query tokens of 60 abstracts (full-length needs)."""
    tok = Tokenizer()
    docs = [tok.tokenize(f"{t} {d}") for t, d in zip(papers["title"], papers["description"], strict=True)]
    queries = [tok.tokenize(d, search_mode=False) for d in papers["description"].iloc[::33]]
    queries += [tok.tokenize(t, search_mode=False) for t in papers["title"].iloc[5::40]]
    return docs, queries


@pytest.fixture
def eager_pruning(monkeypatch):
    """Prune (off by default) on a corpus of 2,000: impact lists from 16 postings, reads from 2·k postings up to
    half of a query's, never giving up early."""
    monkeypatch.setattr(sparse_mod, "PRUNE", True)
    monkeypatch.setattr(sparse_mod, "IMPACT_MIN", 16)
    monkeypatch.setattr(sparse_mod, "FIRST_BUDGET", 2)
    monkeypatch.setattr(sparse_mod, "HOPELESS", 1e9)
    monkeypatch.setattr(sparse_mod, "SCAN_RATIO", 2)
    return count_outcomes(monkeypatch, SparseIndex, "_pruned_candidates", "pruned")


def test_pruned_top_equals_full_scan(tokens, eager_pruning):
    docs, queries = tokens
    rng = np.random.default_rng(0)
    base = SparseIndex().fit(docs[:1800])
    # After live updates too: deletes in the main segment and a delta segment of added documents.
    live = base.updated(add=docs[1800:], delete=rng.choice(1800, 150, replace=False))
    for ix in (base, live):
        for mask in (None, rng.random(len(ix)) < 0.3):
            for q in queries:
                for k in (10, POOL):
                    j, v, _ = ix.top(q, k, mask)
                    fj, fv = full_scan_top(ix, q, k, mask)
                    np.testing.assert_array_equal(j, fj)
                    np.testing.assert_array_equal(v, fv)
    # The test means something only if the bound closed early for some queries and not for others.
    assert eager_pruning["pruned"] > 20 and eager_pruning["scanned"] > 0


def test_score_docs_equal_full_scores(tokens, eager_pruning):
    docs, queries = tokens
    ix = SparseIndex().fit(docs[:1900]).updated(add=docs[1900:], delete=[3, 50, 1950 - 100])
    pos = np.random.default_rng(1).choice(len(ix), 300, replace=False)
    for q in queries[:20]:
        np.testing.assert_array_equal(ix.score_docs(q, pos), ix.scores(q)[pos])
        _, _, also = ix.top(q, 20, None, also=pos)
        np.testing.assert_array_equal(also, ix.scores(q)[pos])


def test_halves_scored_with_global_stats_equal_the_whole(tokens):
    docs, queries = tokens
    whole = SparseIndex().fit(docs)
    st = whole.stats()
    df = {t: int(st.df[i]) for t, i in whole.vocab_.items()}
    halves = [SparseIndex().fit(part).with_stats(df, st.n_docs, st.avgdl) for part in (docs[:1000], docs[1000:])]
    alone = SparseIndex().fit(docs[:1000])
    for q in queries[:20]:
        joined = np.concatenate([h.scores(q) for h in halves])
        np.testing.assert_allclose(joined, whole.scores(q), rtol=1e-6, atol=1e-7)
        got = [h.top(q, 10)[1] for h in halves]
        ref = np.sort(whole.scores(q))[::-1][:10]
        np.testing.assert_allclose(np.sort(np.concatenate(got))[::-1][:10], ref, rtol=1e-6)
    # The local statistics give other scores: the override is what made them agree.
    assert not np.allclose(alone.scores(queries[0]), halves[0].scores(queries[0]))
    # An array over the index's own term ids works as well as a mapping.
    arr = np.array([df[t] for t in sorted(halves[0].vocab_, key=halves[0].vocab_.__getitem__)])
    same = SparseIndex().fit(docs[:1000]).with_stats(arr, st.n_docs, st.avgdl)
    np.testing.assert_array_equal(same.scores(queries[1]), halves[0].scores(queries[1]))


def reference_match(engine: MatchEngine, texts: list[str], k: int, mask: np.ndarray | None
                    ) -> tuple[list[list[int]], list[np.ndarray]]:
    """The engine's scoring before pruning: a full BM25 array, top_k of it, the dense pool, fusion."""
    st = engine._snap
    pool = min(max(engine.config.candidates, k), len(st.ids))
    out_idx, out_val = [], []
    recs, _ = engine._queries(texts)
    for i, text in enumerate(engine._texts(recs)):
        toks = engine.tokenizer_.tokenize(text, normalized=True, search_mode=False)
        qvec = engine.encoder_.encode(*engine._dense_input(recs.iloc[i:i + 1], [text], [toks]))
        d_idx, _ = st.dense.search(qvec, pool, mask)
        s_all = st.sparse.scores(toks)
        s_top, s_val = top_k(s_all if mask is None else np.where(mask, s_all, -np.inf), pool)
        s_top = s_top[s_val > 0]
        d_top = d_idx[0][d_idx[0] >= 0]
        cands = np.unique(np.concatenate([s_top, d_top]))
        fused = fuse(s_all[cands], st.dense.score(qvec[0], cands), engine.config.dense_weight, engine.config.fusion)
        order = np.lexsort((cands, -fused))[:k]
        best = cands[order] if st.to_live is None else st.to_live[cands[order]]
        out_idx.append(best.tolist())
        out_val.append(fused[order])
    return out_idx, out_val


def test_engine_equals_reference_scoring(papers, eager_pruning):
    engine = MatchEngine(EngineConfig(encoder="lsa", candidates=30)).index(papers.iloc[:1900])
    needs = papers["description"].iloc[1::45].tolist() + papers["title"].iloc[7::90].tolist()

    def check(filters: dict[str, list[str]] | None) -> None:
        got = engine.match(needs, k=10, filters=filters)
        st = engine._snap
        keep = st.filters.mask({"category": filters["category"]}) if filters else None
        ref_idx, ref_val = reference_match(engine, needs, 10, st.positions(keep))
        for i in range(len(needs)):
            m = len(ref_idx[i])
            assert got.indices[i, :m].tolist() == ref_idx[i]
            np.testing.assert_allclose(got.scores[i, :m], ref_val[i], rtol=1e-5, atol=1e-6)

    for filters in (None, {"category": ["工学"]}, {"category": ["农学"]}):
        check(filters)
    engine.add(papers.iloc[1900:])
    engine.delete(papers["id"].iloc[100:160])
    assert engine._snap.to_live is not None  # positions and live indices differ: the mapping is exercised
    for filters in (None, {"category": ["医学"]}):
        check(filters)
    assert eager_pruning["pruned"] > 0, eager_pruning


def test_threshold_guess_keeps_the_exact_top_k():
    rng = np.random.default_rng(3)
    for s in (rng.random(100_000).astype(np.float32),  # many positives: the guessed threshold is used
              np.where(rng.random(100_000) < 0.001, rng.random(100_000), 0).astype(np.float32),  # few positives
              np.repeat(np.float32([0.5, 0.25, 0.0]), [50, 60_000, 40_000])):  # ties across the threshold
        for k in (1, 10, 100, 200):
            hit = sparse_mod._above(s, k)
            j, v = top_k(s[hit], k)
            fj, fv = top_k(np.where(s > 0, s, -np.inf), k)
            np.testing.assert_array_equal(hit[j], fj[fv > 0])
