"""Ranking metrics on hand-computed examples."""

from __future__ import annotations

import math

import pytest

from qcy_match.evaluate import mrr_at_k, ndcg_at_k, recall_at_k

RANKED = [["a", "b", "c"], ["x", "y", "z"], ["p", "q"]]
RELEVANT = [{"b": 1}, {"z": 2, "y": 0}, {"r": 1}]


def test_mrr_hand_computed():
    # First relevant at rank 2, rank 3 (y has grade 0, so it does not count), and never.
    assert mrr_at_k(RANKED, RELEVANT, k=10) == pytest.approx((1 / 2 + 1 / 3 + 0) / 3)


def test_mrr_cut_at_k():
    assert mrr_at_k(RANKED, RELEVANT, k=2) == pytest.approx((1 / 2) / 3)
    assert mrr_at_k(RANKED, RELEVANT, k=1) == 0.0


def test_mrr_perfect_and_empty():
    assert mrr_at_k([["a"], ["b"]], [{"a": 1}, {"b": 3}]) == 1.0
    assert mrr_at_k([], []) == 0.0


def test_recall_hand_computed():
    ranked = [["a", "b", "c", "d"], ["x"]]
    relevant = [{"a": 1, "c": 2, "e": 1, "b": 0}, {"y": 1}]
    # Query 1: a and c of {a, c, e} found in the top 4; query 2: nothing.
    assert recall_at_k(ranked, relevant, k=4) == pytest.approx((2 / 3 + 0) / 2)
    assert recall_at_k(ranked, relevant, k=1) == pytest.approx((1 / 3) / 2)


def test_recall_query_without_relevant_counts_as_zero():
    assert recall_at_k([["a"], ["b"]], [{"a": 1}, {}], k=5) == pytest.approx(0.5)


def test_ndcg_hand_computed():
    ranked = [["a", "b", "c"]]
    relevant = [{"a": 0, "b": 2, "c": 1}]
    dcg = 0 / math.log2(2) + (2**2 - 1) / math.log2(3) + (2**1 - 1) / math.log2(4)
    idcg = (2**2 - 1) / math.log2(2) + (2**1 - 1) / math.log2(3)
    assert ndcg_at_k(ranked, relevant, k=10) == pytest.approx(dcg / idcg)
    assert dcg / idcg == pytest.approx(0.6590, abs=1e-4)


def test_ndcg_perfect_ranking_is_one():
    assert ndcg_at_k([["b", "c", "a"]], [{"a": 0, "b": 2, "c": 1}]) == pytest.approx(1.0)


def test_ndcg_cut_at_k_uses_ideal_cut_too():
    # Only the top 1 counts, for the ranking and for the ideal.
    assert ndcg_at_k([["c", "b"]], [{"b": 2, "c": 1}], k=1) == pytest.approx((2**1 - 1) / (2**2 - 1))


def test_ndcg_with_ideal_counts():
    # One relevant document was retrieved at rank 1, but three exist at grade 1 and one at grade 2.
    ranked = [["a", "x"]]
    relevant = [{"a": 1}]
    dcg = 1 / math.log2(2)
    idcg = 3 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(5)
    assert ndcg_at_k(ranked, relevant, k=10, ideal_counts=[{1: 3, 2: 1}]) == pytest.approx(dcg / idcg)
    # With k=2 only the two best ideal grades count.
    idcg2 = 3 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(ranked, relevant, k=2, ideal_counts=[{1: 3, 2: 1}]) == pytest.approx(dcg / idcg2)


def test_ndcg_no_relevant_is_zero_and_mean_over_queries():
    assert ndcg_at_k([["a"]], [{}]) == 0.0
    assert ndcg_at_k([["a"], ["b"]], [{"a": 1}, {"c": 1}]) == pytest.approx(0.5)


@pytest.mark.parametrize("metric", [mrr_at_k, ndcg_at_k, recall_at_k])
def test_mismatched_lengths_raise(metric):
    with pytest.raises(ValueError):
        metric([["a"], ["b"]], [{"a": 1}])
