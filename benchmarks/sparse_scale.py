"""BM25 retrieval cost and quality at several realistic corpus sizes: exact top-k against budgeted (impact-ordered,
score-at-a-time) candidate generation at several postings budgets, in one run.

Records and needs come from :mod:`benchmarks.realistic` (seeded; CSL abstract sentences recombined, full-length
needs, half of them written from a known achievement), tokenised as the engine tokenises them (records in search
mode, needs without). Per size and budget: single-query p50 of :meth:`SparseIndex.top` (the engine's pool of 100),
unfiltered and with a filter keeping ~10 % of positions; top-10 overlap and top-100 recall against the exact list
(unfiltered and filtered); the share of known-source needs whose source is in the top 10; and a check that every
returned score equals the exact BM25 score. Growth ratios between consecutive sizes close the run.

    python -m benchmarks.sparse_scale --sizes 30000 100000 300000 --budgets 0 4000 16000
    python -m benchmarks.sparse_scale --engine --sizes 30000 100000 --budgets 0 4000   # whole single needs

With ``--engine`` each size builds a :class:`MatchEngine` (defaults) once and times whole single needs (explanations
on, unfiltered and filtered on the need's GB/T 大类) per budget, with top-10 overlap against the exact budget and
the known-source hit rate of a batch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from typing import Any

import numpy as np

from qcy_match.index.sparse import SparseIndex
from qcy_match.ingest.records import text_of
from qcy_match.text import Tokenizer

from . import realistic


def corpus(n: int, n_needs: int, seed: int) -> tuple[list[list[str]], list[list[str]], np.ndarray]:
    """Record tokens, need tokens and each need's source position (-1: none)."""
    tok = Tokenizer()
    recs = realistic.achievements(n, seed)
    docs = [tok.tokenize(t) for t in text_of(recs)]
    needs = realistic.needs(n_needs, n, seed)
    queries = [tok.tokenize(t, search_mode=False) for t in text_of(needs)]
    pos = {v: i for i, v in enumerate(recs["id"])}
    return docs, queries, np.asarray([pos.get(s, -1) if s else -1 for s in needs["source"]])


def overlap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    ref = b[:k]
    return len(np.intersect1d(a[:k], ref)) / len(ref) if len(ref) else 1.0


def measure(ix: SparseIndex, needs: list[list[str]], sources: np.ndarray, mask: np.ndarray, pool: int,
            budgets: list[int]) -> list[dict[str, Any]]:
    """Per budget (the first is 0, exact): p50s, agreement with the exact lists and the known-source hit rate.

    Budgets are timed in turn on each need (interleaved), so a change in the machine's load reaches all alike; the
    thread's CPU time is reported beside wall time, since on a shared machine wall time also measures the scheduler.
    """
    got: dict[tuple[int, str], list[np.ndarray]] = {}
    times: dict[tuple[int, str], list[float]] = {}
    cpu: dict[tuple[int, str], list[float]] = {}
    for q in needs:
        for b in budgets:
            for key, m in (("plain", None), ("filtered", mask)):
                t, c = time.perf_counter(), time.thread_time()
                j, v, _ = ix.top(q, pool, m, budget=b)
                times.setdefault((b, key), []).append(time.perf_counter() - t)
                cpu.setdefault((b, key), []).append(time.thread_time() - c)
                got.setdefault((b, key), []).append(j)
                if b and len(j):
                    # Scores stay exact BM25: only the candidate set is approximate.
                    np.testing.assert_array_equal(v, ix.score_docs(q, j))
    rows = []
    for b in budgets:
        row: dict[str, Any] = {"budget": b, "p50_ms": float(np.median(times[b, "plain"]) * 1e3),
                               "filtered_p50_ms": float(np.median(times[b, "filtered"]) * 1e3),
                               "cpu_p50_ms": float(np.median(cpu[b, "plain"]) * 1e3),
                               "cpu_filtered_p50_ms": float(np.median(cpu[b, "filtered"]) * 1e3)}
        for key in ("plain", "filtered"):
            pairs = list(zip(got[b, key], got[0, key], strict=True))
            row[f"{key}_top10_overlap"] = float(np.mean([overlap(x, y, 10) for x, y in pairs]))
            row[f"{key}_top100_recall"] = float(np.mean([overlap(x, y, pool) for x, y in pairs]))
        row["source_hit_at_10"] = float(np.mean([s in j[:10] for j, s in zip(got[b, "plain"], sources, strict=True)
                                                 if s >= 0])) if (sources >= 0).any() else None
        rows.append(row)
    return rows


def engine_run(n: int, budgets: list[int], n_needs: int, seed: int) -> list[dict[str, Any]]:
    """Whole single-need p50 (engine defaults, explanations on; unfiltered and filtered on the need's GB/T 大类)
    and known-source hit@10, for each budget on one engine (the budget is read at query time; budgets are timed in
    turn on each need)."""
    from qcy_match import EngineConfig, MatchEngine

    corpus_df = realistic.achievements(n, seed)
    needs_df = realistic.needs(n_needs, n, seed)
    t0 = time.perf_counter()
    engine = MatchEngine(EngineConfig()).index(corpus_df)
    build_s = time.perf_counter() - t0
    configs = {b: dataclasses.replace(engine.config, sparse_budget=b) for b in budgets}
    times: dict[tuple[int, bool], list[float]] = {}
    for q in needs_df.to_dict("records")[:200]:
        for b in budgets:
            engine.config = configs[b]
            for filtered in (False, True):
                f = {"industry": [q["industry"][0][:3]]} if filtered else None
                t = time.perf_counter()
                engine.match([q], k=10, filters=f, explain_matches=True)
                times.setdefault((b, filtered), []).append(time.perf_counter() - t)
    rows, exact = [], []
    for b in budgets:
        engine.config = configs[b]
        ids = [[x for x in row if x is not None] for row in engine.match(needs_df, k=10).ids]
        exact = exact or ids
        hits = [s in row for row, s in zip(ids, needs_df["source"], strict=True) if s]
        rows.append({"n": n, "budget": b, "build_s": round(build_s, 1),
                     "p50_ms": float(np.median(times[b, False]) * 1e3),
                     "p95_ms": float(np.percentile(times[b, False], 95) * 1e3),
                     "filtered_p50_ms": float(np.median(times[b, True]) * 1e3),
                     "source_hit_at_10": float(np.mean(hits)),
                     "top10_overlap_vs_exact": float(np.mean([len(set(x) & set(y)) / max(len(y), 1)
                                                              for x, y in zip(ids, exact, strict=True)]))})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[30_000, 100_000, 300_000])
    ap.add_argument("--budgets", type=int, nargs="+", default=[0, 8_000, 16_000, 32_000])
    ap.add_argument("--needs", type=int, default=150)
    ap.add_argument("--pool", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--engine", action="store_true", help="time whole single needs through MatchEngine instead")
    args = ap.parse_args()
    budgets = [0] + [b for b in args.budgets if b]
    print(json.dumps({"load_avg": os.getloadavg(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}))
    rows = []
    if args.engine:
        for n in args.sizes:
            for row in engine_run(n, budgets, args.needs, args.seed):
                rows.append(row)
                print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}),
                      flush=True)
    for n in args.sizes if not args.engine else []:
        t0 = time.perf_counter()
        docs, needs, sources = corpus(n, args.needs, args.seed)
        ix = SparseIndex().fit(docs)
        postings = len(ix.main_.docs)
        del docs
        ix._rows(), ix._impact()  # built on first use: not part of a query's time
        build_s = time.perf_counter() - t0
        mask = np.random.default_rng(1).random(n) < 0.1
        for r in measure(ix, needs, sources, mask, args.pool, budgets):
            row = {"n": n, "postings": postings, "setup_s": round(build_s, 1), **r}
            rows.append(row)
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    for b in budgets:
        mine = [r for r in rows if r["budget"] == b]
        for a, z in zip(mine, mine[1:], strict=False):
            print(json.dumps({"budget": b, "from": a["n"], "to": z["n"],
                              **{f"growth_{k}": round(z[k] / a[k], 2) for k in a if k.endswith("p50_ms")}}))
    print(json.dumps({"load_avg_end": os.getloadavg()}))


if __name__ == "__main__":
    main()
