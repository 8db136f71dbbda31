"""IR metrics through ir-measures (pytrec_eval-terrier underneath), with qcy_match.evaluate as the fallback.

nDCG uses gains 2^rel - 1 (grade 2 → 3, grade 1 → 1), as qcy_match.evaluate does; trec_eval's default would be
linear gains. Every query in the judgments counts: a query with no results scores 0 (pytrec_eval would drop it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import fmean

NAMES = ("nDCG@10", "MRR@10", "R@10", "R@100")


def _library_measures() -> dict[str, object] | None:
    try:
        import ir_measures
    except ImportError:
        return None
    return {"nDCG@10": ir_measures.nDCG(gains={0: 0, 1: 1, 2: 3}) @ 10, "MRR@10": ir_measures.RR @ 10,
            "R@10": ir_measures.R @ 10, "R@100": ir_measures.R @ 100}


def backend() -> str:
    return "ir-measures" if _library_measures() is not None else "qcy_match.evaluate"


def per_query(ranked: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]
              ) -> dict[str, dict[str, float]]:
    """Metric name -> query id -> value, for every query of ``qrels``."""
    measures = _library_measures()
    out: dict[str, dict[str, float]] = {m: dict.fromkeys(qrels, 0.0) for m in NAMES}
    if measures is None:
        from qcy_match import evaluate as ev

        for q, rel in qrels.items():
            ids = list(ranked.get(q, []))
            out["nDCG@10"][q] = ev.ndcg_at_k([ids], [rel], 10)
            out["MRR@10"][q] = ev.mrr_at_k([ids], [rel], 10)
            out["R@10"][q] = ev.recall_at_k([ids], [rel], 10)
            out["R@100"][q] = ev.recall_at_k([ids], [rel], 100)
        return out
    import ir_measures

    # Scores from ranks, so trec_eval's tie-breaking (by document id) never reorders a list.
    run = {q: {d: float(len(ids) - r) for r, d in enumerate(ids)} for q, ids in ranked.items() if ids and q in qrels}
    by_measure = {str(m): name for name, m in measures.items()}
    for m in ir_measures.iter_calc(list(measures.values()), {q: dict(r) for q, r in qrels.items()}, run):
        out[by_measure[str(m.measure)]][m.query_id] = float(m.value)
    return out


def mean(ranked: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]],
         query_ids: Sequence[str] | None = None) -> dict[str, float]:
    """Mean of each metric over ``query_ids`` (default: every judged query)."""
    pq = per_query(ranked, qrels)
    ids = list(query_ids) if query_ids is not None else list(qrels)
    return {m: fmean(pq[m].get(q, 0.0) for q in ids) if ids else 0.0 for m in NAMES}
