"""``qcy-match tune`` on CSL: judgments derived from the dev rows, the tuned index measured on the test rows.

Task (``--task``): ``csl``, CSL keywords → paper (corpus ``csl_full``: title + abstract; the first ``--limit`` dev
and test rows, 500 by default); or ``buyer``, the buyer-language needs → the same 2,000 CSL records
(``corpora/buyer_needs.jsonl``: 35 dev, 50 test rows; results in ``tune_buyer.{json,md}``). For every dev query
the judgments hold the right record as accepted (grade 1) and the default engine's other top-10 results as rejected
(grade 0), as a broker's log of accepted and rejected suggestions would.
``qcy-match tune`` runs on those through the CLI, so the whole path is exercised (reading the judgments,
cross-validation by need, saving into the index under its lock); then the test rows are matched with the index
before and after, and compared by MRR@10 / nDCG@10 and by the ECE of the confidence on their top-10 pairs.

Usage: python -m benchmarks.tune [--task csl|buyer] [--data ../shared/data] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qcy_match.cli import main as cli
from qcy_match.evaluate import mrr_at_k, ndcg_at_k
from qcy_match.match import confidence as cf
from qcy_match.match.engine import MatchEngine

from .buyer_needs import buyer_datasets
from .datasets import csl_datasets, default_data

logger = logging.getLogger("benchmarks.tune")
K = 10
WEIGHTS = "0.2,0.3,0.5,0.6"
DEPTHS = "50,100"


def measure(engine: MatchEngine, queries: pd.DataFrame, qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    m = engine.match(queries, k=K, explain_matches=False)
    ranked = [[str(x) for x in row if x is not None] for row in m.ids]
    rel = [qrels[q] for q in m.query_ids]
    labels = np.array([int(rel[i].get(str(x), 0) > 0) for i, row in enumerate(m.ids) for x in row if x is not None])
    conf = m.confidence[m.indices >= 0].astype(np.float64)
    return {"mrr@10": round(mrr_at_k(ranked, rel, K), 4), "ndcg@10": round(ndcg_at_k(ranked, rel, K), 4),
            "ece": round(cf.expected_calibration_error(conf, labels), 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    ap.add_argument("--task", choices=("csl", "buyer"), default="csl")
    ap.add_argument("--limit", type=int, default=500, help="dev and test queries (0: all 1,000 of each)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("qcy_match").setLevel(logging.WARNING)
    t0 = time.time()
    data = args.data or default_data()
    if args.task == "csl":
        ds = {d.name: d for d in csl_datasets(data, filtered=False)}["csl_keywords_paper"]
    else:
        ds = {d.name: d for d in buyer_datasets(data)}["buyer_need_csl"]
    dev = ds.queries[ds.queries["id"].map(ds.split) == "dev"].reset_index(drop=True)
    test = ds.queries[ds.queries["id"].map(ds.split) == "test"].reset_index(drop=True)
    if args.limit:
        dev, test = dev.iloc[:args.limit], test.iloc[:args.limit]
    result: dict[str, Any] = {"task": ds.name, "dev_queries": len(dev), "test_queries": len(test),
                              "grid": {"weights": WEIGHTS, "depths": DEPTHS}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        engine = MatchEngine().index(ds.corpus)
        engine.save(root / "index")
        result["before"] = {"dev": measure(engine, dev, ds.qrels), "test": measure(engine, test, ds.qrels)}
        m = engine.match(dev, k=K, explain_matches=False)
        rows = []
        for i, q in enumerate(m.query_ids):
            rows += [{"need_id": q, "achievement_id": a, "label": "accepted"} for a in ds.qrels[q]]
            rows += [{"need_id": q, "achievement_id": str(a), "label": "rejected"} for a in m.ids[i]
                     if a is not None and str(a) not in ds.qrels[q]]
        pd.DataFrame(rows).to_csv(root / "judgments.csv", index=False)
        dev.to_json(root / "needs.jsonl", orient="records", lines=True, force_ascii=False)
        t = time.time()
        status = cli(["tune", "--index", str(root / "index"), "--judgments", str(root / "judgments.csv"), "--needs",
                      str(root / "needs.jsonl"), "--weights", WEIGHTS, "--depths", DEPTHS, "--report",
                      str(root / "report.json")])
        result["tune_seconds"] = round(time.time() - t, 1)
        if status != 0:
            raise SystemExit(f"qcy-match tune exited with {status}")
        result["report"] = json.loads((root / "report.json").read_text(encoding="utf-8"))
        result["judged_pairs"] = len(rows)
        tuned = MatchEngine.load(root / "index")
        result["after"] = {"dev": measure(tuned, dev, ds.qrels), "test": measure(tuned, test, ds.qrels)}
    result["seconds"] = round(time.time() - t0, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "tune" if args.task == "csl" else f"tune_{args.task}"
    (args.out / f"{stem}.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    text = markdown(result)
    (args.out / f"{stem}.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


def markdown(r: dict[str, Any]) -> str:
    rep = r["report"]
    lines = [f"# qcy-match tune on {r['task']} (benchmarks/tune.py)", "",
             f"Judgments: {r['judged_pairs']} pairs of the {r['dev_queries']} dev queries (right record accepted, the "
             f"default's other top-10 rejected); grid dense_weight {r['grid']['weights']} × candidates "
             f"{r['grid']['depths']}; {rep['folds']}-fold cross-validation by need.", "",
             f"Chosen: {rep['chosen']} (was {rep['current']}); saved: {rep['saved']} (ranking improved: "
             f"{rep['improved_ranking']}, calibration improved: {rep['improved_calibration']}).", "",
             "Held out within the dev judgments (cross-validation): " + ", ".join(
                 f"{k} {v}" for k, v in rep["heldout"].items()), "",
             "| rows | index | MRR@10 | nDCG@10 | ECE of confidence (top-10 pairs) |", "|---|---|---|---|---|"]
    for split in ("dev", "test"):
        for when in ("before", "after"):
            m = r[when][split]
            lines.append(f"| {split} | {when} tune | {m['mrr@10']} | {m['ndcg@10']} | {m['ece']} |")
    lines += ["", f"tune took {r['tune_seconds']} s; the whole run {r['seconds']} s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
