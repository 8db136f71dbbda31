"""Ranking metrics as pure functions over ranked id lists and graded relevance judgments."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def mrr_at_k(ranked: Sequence[Sequence[str]], relevant: Sequence[Mapping[str, int]], k: int = 10) -> float:
    """Mean reciprocal rank of the first relevant id within the top ``k``."""
    total = 0.0
    for ids, rel in zip(ranked, relevant, strict=True):
        for r, doc in enumerate(list(ids)[:k], 1):
            if rel.get(doc, 0) > 0:
                total += 1.0 / r
                break
    return total / max(1, len(ranked))


def ndcg_at_k(ranked: Sequence[Sequence[str]], relevant: Sequence[Mapping[str, int]], k: int = 10,
              ideal_counts: Sequence[Mapping[int, int]] | None = None) -> float:
    """Mean nDCG@k with gains 2^rel - 1.

    ``ideal_counts`` gives, per query, how many documents exist at each grade, for judgments too large to list
    (e.g. "every paper of the same category").
    """
    total = 0.0
    for q, (ids, rel) in enumerate(zip(ranked, relevant, strict=True)):
        dcg = sum((2 ** rel.get(d, 0) - 1) / math.log2(r + 1) for r, d in enumerate(list(ids)[:k], 1))
        if ideal_counts is not None:
            grades = [g for g, n in sorted(ideal_counts[q].items(), reverse=True) for _ in range(n)][:k]
        else:
            grades = sorted(rel.values(), reverse=True)[:k]
        idcg = sum((2 ** g - 1) / math.log2(r + 1) for r, g in enumerate(grades, 1))
        total += dcg / idcg if idcg > 0 else 0.0
    return total / max(1, len(ranked))


def recall_at_k(ranked: Sequence[Sequence[str]], relevant: Sequence[Mapping[str, int]], k: int = 10) -> float:
    """Mean share of the relevant ids found in the top ``k``."""
    total = 0.0
    for ids, rel in zip(ranked, relevant, strict=True):
        pos = {d for d, g in rel.items() if g > 0}
        total += len(pos & set(list(ids)[:k])) / len(pos) if pos else 0.0
    return total / max(1, len(ranked))
