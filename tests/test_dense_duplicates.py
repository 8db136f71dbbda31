"""Duplicate vectors share one node of the dense index: results equal a duplicate-free index's, expanded.

CSL abstracts are encoded with the LSA encoder and each vector is repeated a seeded number of times (1-6) in a
shuffled order, as a platform holding one achievement posted through several channels would hold it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qcy_match import EngineConfig, MatchEngine
from qcy_match.index.dense import DenseIndex, partitions
from qcy_match.index.dense.groups import Groups
from qcy_match.index.topk import exact_top_k
from qcy_match.persistence import LAYOUT

CSL = Path(os.environ.get("QCY_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "csl"
K = 10

pytestmark = pytest.mark.skipif(not (CSL / "csl_2000.jsonl").is_file(), reason="CSL data not found")


@pytest.fixture(scope="module")
def engine() -> MatchEngine:
    papers = [json.loads(x) for x in (CSL / "csl_2000.jsonl").open(encoding="utf-8")]
    recs = pd.DataFrame({"id": [p["id"] for p in papers], "title": [p["title"] for p in papers],
                         "description": [p["abstract"] for p in papers],
                         "keywords": [p["keywords"] for p in papers]})
    return MatchEngine(EngineConfig(encoder="lsa", index="numpy")).index(recs)


@pytest.fixture(scope="module")
def distinct(engine) -> np.ndarray:
    """The distinct non-zero vectors (CSL repeats a few papers itself), in record order."""
    v = np.asarray(engine.vectors(), dtype=np.float32)
    v = v[np.sort(np.unique(v, axis=0, return_index=True)[1])]
    return v[np.abs(v).sum(axis=1) > 0]


@pytest.fixture(scope="module")
def copies(distinct) -> tuple[np.ndarray, np.ndarray]:
    """The distinct vectors repeated 1-6 times, shuffled; and the distinct row of each position."""
    rng = np.random.default_rng(7)
    source = rng.permutation(np.repeat(np.arange(len(distinct)), rng.integers(1, 7, len(distinct))))
    return distinct[source], source


@pytest.fixture(scope="module")
def queries(engine) -> np.ndarray:
    texts = [" ".join(k) for k in engine.records_["keywords"].iloc[::40]]
    return engine.encoder_.encode(texts, [engine.tokenizer_.tokenize(t) for t in texts]).astype(np.float32)


def stored(index: DenseIndex) -> np.ndarray:
    """Every position's stored vector (main, then delta) as float32."""
    return np.asarray(index.rows(np.arange(len(index))), dtype=np.float32)


def assert_exact(index: DenseIndex, q: np.ndarray, keep: np.ndarray | None, share: float = 1.0) -> None:
    """Never short, only kept positions, each once, scores exact and best first, and at least ``share`` of the
    exact top-k found (ties at the k-th score count).
    """
    got_i, got_s = index.search(q, K, keep)
    vectors = stored(index)
    live = np.ones(len(index), bool) if index.alive_ is None else index.alive_.copy()
    kept = live if keep is None else live & keep
    _, want_s = exact_top_k(vectors, q, K, kept)
    want = min(K, int(kept.sum()))
    assert ((got_i >= 0).sum(axis=1) == want).all()
    assert kept[got_i[got_i >= 0]].all()
    assert all(len(set(row[row >= 0].tolist())) == (row >= 0).sum() for row in got_i)
    if not want:
        return
    np.testing.assert_allclose(got_s[:, :want], np.einsum("qd,qkd->qk", q, vectors[got_i[:, :want]]), atol=1e-5)
    assert (np.diff(got_s[:, :want], axis=1) <= 1e-6).all()
    found = (got_s[:, :want] >= want_s[:, want - 1:want] - 1e-5).sum(axis=1)
    assert found.mean() / want >= share, found.mean() / want


def test_groups_are_the_bit_identical_rows_numbered_by_first_position(copies):
    x, source = copies
    groups = Groups.of(x, np.float32)
    assert groups.nodes == len(np.unique(source))
    # Same node exactly when same source row; nodes numbered in the order of their first position.
    _, first = np.unique(source, return_index=True)
    np.testing.assert_array_equal(groups.firsts, np.sort(first))
    np.testing.assert_array_equal(x[groups.firsts[groups.node_of]], x)
    assert Groups.of(np.asarray(x, np.float32)[:50], np.float32).identity == (len(np.unique(source[:50])) == 50)
    # Rows equal only after rounding to float16 share a float16 node.
    near = np.asarray(x[:2], np.float16).astype(np.float32)
    near[1] = near[0] * np.float32(1 + 1e-6)  # far within float16's half-ulp (a relative 5e-4)
    assert not np.array_equal(near[0], near[1])
    assert Groups.of(near, np.float16).nodes == 1 and Groups.of(near, np.float32).nodes == 2


@pytest.mark.parametrize("storage", ["float32", "float16", "sq8"])
@pytest.mark.parametrize("kind", ["hnsw", "numpy", "ivf"])
def test_results_are_a_duplicate_free_index_results_expanded(copies, distinct, queries, kind, storage):
    x, source = copies
    index = DenseIndex(kind, storage=storage).fit(x)
    assert len(index) == len(x) and len(index.store_) == len(distinct)
    assert_exact(index, queries, None, share=0.99 if kind != "ivf" else 0.9)
    if kind == "numpy":
        # Each distinct row's score, repeated by its copies, in position order within a tie.
        _, plain_s = DenseIndex(kind, storage=storage).fit(distinct).search(queries, K, None)
        got_i, got_s = index.search(queries, K)
        np.testing.assert_allclose(got_s, np.sort(np.einsum("qd,qkd->qk", queries, stored(index)[got_i]))[:, ::-1],
                                   atol=1e-6)
        assert (got_s[:, 0] == plain_s[:, 0]).all()
        for row in got_i:
            for s in np.unique(source[row]):
                members = row[source[row] == s]
                assert (np.diff(members) > 0).all()  # ties in position order


def test_hnsw_over_copies_finds_what_exact_search_finds(copies, queries):
    """A graph over every copy found 0.988 of the tie-aware exact top-10 here (copies fill a node's links); one
    over the distinct rows finds them all.
    """
    x, _ = copies
    index = DenseIndex("hnsw", storage="float16").fit(x)
    assert index.kind_ == "hnsw" and index.backend_.faiss_.ntotal == len(index.store_) < len(x)
    assert_exact(index, queries, None, share=1.0)


def best_group(copies, queries) -> tuple[DenseIndex, np.ndarray, float]:
    """An HNSW index over the copies, the positions of the first query's best vector, and its score."""
    x, source = copies
    index = DenseIndex("hnsw").fit(x)
    top, top_s = index.search(queries[:1], 1)
    return index, np.flatnonzero(source == source[top[0, 0]]), float(top_s[0, 0])


def test_a_mask_keeping_one_copy_returns_that_copy_only(copies, queries):
    x, _ = copies
    index, group, _ = best_group(copies, queries)
    rng = np.random.default_rng(3)
    for one in group:
        keep = rng.random(len(x)) < 0.5
        keep[group] = False
        keep[one] = True
        got, _ = index.search(queries[:1], K, keep)
        assert got[0, 0] == one and not np.isin(np.setdiff1d(group, [one]), got).any()
        assert_exact(index, queries, keep, share=0.99)


def test_deleted_copies_are_never_returned_and_an_added_copy_ties(copies, queries):
    x, _ = copies
    index, group, best = best_group(copies, queries)
    gone = index.updated(delete=group[1:])
    got, got_s = gone.search(queries[:1], K)
    assert got[0, 0] == group[0] and not np.isin(group[1:], got).any()
    assert_exact(gone, queries, None, share=0.99)
    every = index.updated(delete=group)
    assert not np.isin(group, every.search(queries[:1], K)[0]).any()
    added = every.updated(add=x[group[:1]])  # a copy added live, after every older copy was deleted
    got, got_s = added.search(queries[:1], K)
    assert got[0, 0] == len(x) and got_s[0, 0] == pytest.approx(best, abs=1e-6)
    assert_exact(added, queries, None, share=0.99)
    # Compaction groups the live copies again, as a fresh build over them would.
    fresh = added.compacted()
    assert len(fresh) == len(x) - len(group) + 1 and len(fresh.store_) == len(index.store_)
    assert_exact(fresh, queries, None, share=0.99)


def test_partitions_hold_each_copy_under_its_own_label(copies, queries, monkeypatch):
    """Copies of one vector labelled differently: each partition's graph holds the node, and a filter on one
    label returns only that label's copies (graph walks forced, as in test_partitions).
    """
    x, source = copies
    monkeypatch.setattr(partitions, "walk_cost", lambda ef, m, share: 1.0)
    labels = (source % 3 + np.arange(len(x)) % 2).astype(np.int8)  # copies of a row spread over two labels
    index = DenseIndex("hnsw", storage="float16", partition_min=150, exact_below=40).fit(x, labels=labels)
    parts = index.partitions_
    assert parts is not None and set(parts.graphs) == {0, 1, 2, 3}
    assert all(graph.ntotal == len(np.unique(source[labels == p])) for p, graph in parts.graphs.items())
    rng = np.random.default_rng(5)
    for keep in (labels == 1, (labels == 2) | (labels == 3), (labels == 0) & (rng.random(len(x)) < 0.5),
                 rng.random(len(x)) < 0.3):
        assert_exact(index, queries, keep, share=0.99)


def test_save_load_round_trip_writes_and_checks_the_groups(copies, distinct, queries, tmp_path):
    x, _ = copies
    labels = (np.arange(len(x)) % 2).astype(np.int8)
    index = DenseIndex("hnsw", storage="float16", partition_min=150).fit(x, labels=labels)
    (tmp_path / "a").mkdir()
    files = index.save(tmp_path / "a")
    assert LAYOUT.groups in files
    loaded = DenseIndex.load(tmp_path / "a", index.params(), index.kind_)
    keep = labels == 1
    for mask in (None, keep):
        a, b = index.search(queries, K, mask), loaded.search(queries, K, mask)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    # Without duplicates there is no groups file.
    (tmp_path / "b").mkdir()
    assert LAYOUT.groups not in DenseIndex("hnsw").fit(distinct).save(tmp_path / "b")
    # A groups file that disagrees with the stored vectors is refused.
    np.save(tmp_path / "a" / LAYOUT.groups, np.zeros(len(x), np.int32))
    with pytest.raises(ValueError, match=LAYOUT.groups):
        DenseIndex.load(tmp_path / "a", index.params(), index.kind_)


def test_an_engine_over_repeated_records_saves_and_loads(engine, tmp_path):
    recs = pd.concat([engine.records_, engine.records_.iloc[:300]], ignore_index=True)
    recs["id"] = [f"r{i}" for i in range(len(recs))]
    eng = MatchEngine(EngineConfig(encoder="lsa", index="hnsw")).index(recs)
    assert len(eng.dense_.store_) == len(np.unique(eng.vectors(), axis=0)) <= len(engine.records_)
    assert len(eng.dense_) == len(recs)
    eng.save(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / LAYOUT.manifest).read_text(encoding="utf-8"))
    assert LAYOUT.groups in manifest["files"]
    loaded = MatchEngine.load(tmp_path / "idx")
    need = engine.records_["title"].iloc[:5].tolist()
    a, b = eng.match(need, k=5), loaded.match(need, k=5)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)


@pytest.mark.parametrize("kind", ["flat", "numpy", "hnsw"])
def test_a_tie_across_nodes_comes_out_in_position_order(copies, kind):
    """A query tying every vector (all scores 0) gets k kept positions in increasing order, whichever nodes hold
    them and in whatever order the structure hands tied nodes back; each node's first position among them.
    """
    x, source = copies
    index = DenseIndex(kind).fit(x)
    zero = np.zeros((1, x.shape[1]), np.float32)
    keep = np.random.default_rng(2).random(len(x)) < 0.5
    for mask in (None, keep):
        got = index.search(zero, 100, mask)[0][0]
        assert (got >= 0).all() and (np.diff(got) > 0).all()
        if mask is not None:
            assert mask[got].all()
        # A node's members come lowest first: none is returned while a lower kept copy of it is left out.
        kept = np.ones(len(x), bool) if mask is None else mask
        for pos in got:
            lower = np.flatnonzero((source == source[pos]) & kept)
            assert np.isin(lower[lower < pos], got).all()
