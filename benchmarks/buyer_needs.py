"""Buyer-language needs → CSL records, and back (``corpora/buyer_needs.jsonl``, see the README's "Buyer-language
needs" section).

Tasks (dev and test rows apart; the dev rows are the only ones any setting was chosen on):

- ``buyer_need_csl``: each need against the 2,000 CSL records; its one relevant record is its ``target``;
- ``buyer_need_csl_distract``: the same with CSL's 8,000 title-only rows mixed in;
- ``buyer_csl_need``: the reverse direction, achievement → needs: the needs are indexed with the demo corpus's 110
  needs beside them, each target record (title and abstract) is the query, and the need written for it is its one
  relevant record.

``python -m benchmarks.buyer_needs`` runs them with the anchors and writes ``benchmarks/results/buyer_needs.{json,md}``,
including the single-need latency (p50) of the default engine at 2,000 records.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import pandas as pd

from qcy_match import EngineConfig, MatchEngine

from . import report
from .anchors import ConfigSearcher, Searcher
from .datasets import REPO, Dataset, csl_datasets, default_data, load_csl

logger = logging.getLogger(__name__)
NEEDS = REPO / "corpora" / "buyer_needs.jsonl"
FIELDS = ("id", "title", "description", "target", "category", "split")
SPLITS = ("dev", "test")


def load_needs(path: Path = NEEDS) -> pd.DataFrame:
    """The need statements, checked: every field present and a string, ids unique, split dev or test."""
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            row = json.loads(line)
            bad = [f for f in FIELDS if not isinstance(row.get(f), str)]
            if bad:
                raise ValueError(f"{path}: row {n}: field {bad[0]} missing or not a string")
            if row["split"] not in SPLITS:
                raise ValueError(f"{path}: row {n}: field split is {row['split']!r}, expected dev or test")
            rows.append(row)
    df = pd.DataFrame(rows, columns=list(FIELDS))
    if df["id"].duplicated().any():
        raise ValueError(f"{path}: duplicate id {df['id'][df['id'].duplicated()].iloc[0]}")
    return df


def buyer_datasets(data: Path, needs_path: Path = NEEDS) -> list[Dataset]:
    """The three tasks. The forward ones reuse the CSL tasks' corpus names, so one run indexes each corpus once."""
    needs = load_needs(needs_path)
    papers, _ = load_csl(data)
    by_id = {p["id"]: p for p in papers}
    missing = sorted(set(needs["target"]) - set(by_id))
    if missing:
        raise ValueError(f"{needs_path}: target {missing[0]} is not a CSL record id")
    corpora = {d.corpus_name: d.corpus for d in csl_datasets(data, filtered=False)}
    queries = needs[["id", "title", "description"]]
    split = dict(zip(needs["id"], needs["split"], strict=True))
    qrels = {r.id: {r.target: 1} for r in needs.itertuples()}
    note = f"{len(needs)} buyer-language needs written for CSL records (corpora/buyer_needs.jsonl)"
    out = [Dataset("buyer_need_csl", "csl_full", corpora["csl_full"], queries, qrels, split, note=note),
           Dataset("buyer_need_csl_distract", "csl_distract", corpora["csl_distract"], queries, qrels, split,
                   note=note + " + 8,000 title-only CSL rows")]
    achievements = pd.DataFrame([{"id": t, "title": by_id[t]["title"], "description": by_id[t]["abstract"]}
                                 for t in needs["target"]])
    reverse = {r.target: {r.id: 1} for r in needs.itertuples()}
    # The demo corpus's 110 needs (industrial, buyer's register too) join the index as needs no query was written
    # for, so the reverse direction is not a pick among 85 texts on 13 unrelated subjects.
    demo = pd.read_json(REPO / "corpora" / "needs.jsonl", lines=True, dtype=False)[["id", "title", "description"]]
    out.append(Dataset("buyer_csl_need", "buyer_needs", pd.concat([queries, demo], ignore_index=True), achievements,
                       reverse, {r.target: r.split for r in needs.itertuples()},
                       note=f"achievement → need: {len(needs)} needs + {len(demo)} demo needs indexed, the target "
                            "records as queries"))
    return out


def variants(engine: MatchEngine) -> list[Searcher]:
    """The settings tried for this task that are not the default (README: "what was tried")."""
    return [ConfigSearcher(engine, "qcy_match before (query_dense_text=index)", query_dense_text="index"),
            ConfigSearcher(engine, "qcy_match + RM3 feedback (5 docs, 10 terms, 0.3)", prf_docs=5)] + [
            ConfigSearcher(engine, f"qcy_match sparse_budget={b}", sparse_budget=b)
            for b in (0, 4_000, 500) if b != EngineConfig().sparse_budget]


def single_need_latency(corpus: pd.DataFrame, needs: pd.DataFrame, config: EngineConfig | None = None
                        ) -> dict[str, float]:
    """Build seconds and p50 / p90 milliseconds of one-need ``match`` calls (k=10, explanations on)."""
    t0 = time.perf_counter()
    engine = MatchEngine(config or EngineConfig()).index(corpus)
    build = time.perf_counter() - t0
    engine.match(needs.iloc[:1], k=10)  # warm-up: first call loads the encoder's model
    times = []
    for i in range(len(needs)):
        t = time.perf_counter()
        engine.match(needs.iloc[i:i + 1], k=10)
        times.append((time.perf_counter() - t) * 1000)
    q = statistics.quantiles(times, n=10)
    return {"build_s": round(build, 2), "p50_ms": round(statistics.median(times), 2), "p90_ms": round(q[8], 2)}


def markdown(res: dict[str, Any]) -> str:
    lines = ["## Buyer-language needs (corpora/buyer_needs.jsonl)", ""]
    lines += ["| task | system | dev MRR@10 | dev R@10 | test MRR@10 | test R@10 |", "|---|---|---|---|---|---|"]
    for task, t in res["quality"]["tasks"].items():
        for system, by in t["results"].items():
            d, s = by.get("dev", {}), by.get("test", {})
            lines.append(f"| {task} | {system} | {report._f(d.get('MRR@10'))} | {report._f(d.get('R@10'))} | "
                         f"{report._f(s.get('MRR@10'))} | {report._f(s.get('R@10'))} |")
    lines += ["", "| setting | build s (2,000 records) | single-need p50 ms | p90 ms |", "|---|---|---|---|"]
    for name, r in res.get("latency", {}).items():
        lines.append(f"| {name} | {r['build_s']} | {r['p50_ms']} | {r['p90_ms']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--no-distract", action="store_true", help="leave out the 10,000-record task (slow to index)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from .anchors import available
    from .quality import evaluate

    datasets = [d for d in buyer_datasets(args.data) if not (args.no_distract and d.name.endswith("distract"))]
    res: dict[str, Any] = {"quality": evaluate(datasets, skip=dict(available()), light=True, extra=variants)}
    corpus = next(d.corpus for d in datasets if d.corpus_name == "csl_full")
    needs = load_needs()[["id", "title", "description"]]
    res["latency"] = {"default": single_need_latency(corpus, needs),
                      "before (query_dense_text=index)": single_need_latency(
                          corpus, needs, EngineConfig(query_dense_text="index"))}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "buyer_needs.json").write_text(json.dumps(res, indent=1, ensure_ascii=False), encoding="utf-8")
    (args.out / "buyer_needs.md").write_text(markdown(res), encoding="utf-8")
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
