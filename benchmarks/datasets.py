"""Datasets of the suite: a corpus, queries and graded relevance judgments.

- CSL (github.com/ydli-ai/CSL, COLING 2022, Apache-2.0): 2,000 papers of its dev/test splits in
  ``<data>/csl/csl_2000.jsonl`` and 8,000 title-only rows in ``csl_titles_8000.tsv`` (distractors). ``<data>`` is
  ``--data``, else ``$QCY_SHARED_DATA``, else ``../shared/data`` beside the repository. Elsewhere: download CSL from
  that repository and write the same two files (fields id, title, abstract, keywords, category, discipline).
- The demo corpus (``corpora/``): needs → the achievements they were written to match (tuned by construction).
- Synthetic records (:mod:`benchmarks.synth`) have no judgments: they serve speed and scale, where the truth for an
  approximate search is the exact search on the same vectors.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def default_data() -> Path:
    return Path(os.environ.get("QCY_SHARED_DATA") or REPO.parent / "shared" / "data")


@dataclass
class Dataset:
    """One retrieval task. ``corpus_name`` names the corpus so tasks over the same records share one index."""

    name: str
    corpus_name: str
    corpus: pd.DataFrame
    queries: pd.DataFrame  # id, title (+ any record fields)
    qrels: dict[str, dict[str, int]]
    split: dict[str, str] = field(default_factory=dict)  # query id -> dev/test ("all" when absent)
    filters: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # query id -> filter
    exclude: dict[str, str] = field(default_factory=dict)  # query id -> corpus id left out of its results
    note: str = ""

    def splits(self) -> dict[str, list[str]]:
        """Query ids per split, in query order."""
        out: dict[str, list[str]] = {}
        for q in self.queries["id"]:
            out.setdefault(self.split.get(q, "all"), []).append(q)
        return out


# ---- CSL ------------------------------------------------------------------------------------------------------

def load_csl(data: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    path = data / "csl" / "csl_2000.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass --data DIR or set QCY_SHARED_DATA (CSL comes from "
                                "github.com/ydli-ai/CSL; see benchmarks/datasets.py for the file layout)")
    papers = [json.loads(line) for line in path.open(encoding="utf-8")]
    titles = []
    with (data / "csl" / "csl_titles_8000.tsv").open(encoding="utf-8") as fh:
        next(fh)
        for i, line in enumerate(fh):
            title, _, cat = line.rstrip("\n").partition("\t")
            titles.append({"id": f"t-{i}", "title": title, "category": cat})
    return papers, titles


def csl_datasets(data: Path, filtered: bool = True) -> list[Dataset]:
    """The CSL tasks; ``*_filtered`` variants restrict each query to its own CSL category (a metadata filter)."""
    papers, titles = load_csl(data)
    full = pd.DataFrame([{"id": p["id"], "title": p["title"], "description": p["abstract"],
                          "category": p["category"]} for p in papers])
    corpora = {
        "csl_abstract": pd.DataFrame([{"id": p["id"], "title": p["abstract"], "category": p["category"]}
                                      for p in papers]),
        "csl_full": full,
        "csl_distract": pd.concat([full, pd.DataFrame(titles)], ignore_index=True).fillna({"description": ""}),
    }
    split = {p["id"]: p["id"].split("-")[0] for p in papers}
    title_q = pd.DataFrame([{"id": p["id"], "title": p["title"]} for p in papers])
    kw_q = pd.DataFrame([{"id": p["id"], "title": " ".join(p["keywords"])} for p in papers])
    own = {p["id"]: {p["id"]: 1} for p in papers}
    by_cat: dict[str, list[dict[str, Any]]] = {}
    for p in papers:
        by_cat.setdefault(p["category"], []).append(p)
    topic = {p["id"]: {q["id"]: 2 if q["discipline"] == p["discipline"] else 1
                       for q in by_cat[p["category"]] if q["id"] != p["id"]} for p in papers}
    self_ex = {p["id"]: p["id"] for p in papers}
    cat_filter = {p["id"]: {"category": [p["category"]]} for p in papers}
    tasks = [
        ("title_abstract", "csl_abstract", title_q, own, {}),
        ("keywords_paper", "csl_full", kw_q, own, {}),
        ("topic", "csl_full", title_q, topic, self_ex),
        ("keywords_paper_distract", "csl_distract", kw_q, own, {}),
        ("topic_distract", "csl_distract", title_q, topic, self_ex),
    ]
    out = [Dataset(f"csl_{n}", c, corpora[c], q, rel, split, {}, ex) for n, c, q, rel, ex in tasks]
    if filtered:
        out += [Dataset(f"csl_{n}_filtered", c, corpora[c], q, rel, split, cat_filter, ex)
                for n, c, q, rel, ex in tasks[:3]]
    counts = Counter(p["category"] for p in papers)
    for d in out:
        d.note = f"CSL, {len(papers)} papers in {len(counts)} categories"
    return out


# ---- demo corpus ----------------------------------------------------------------------------------------------

def demo_dataset(corpus_dir: Path = REPO / "corpora") -> Dataset:
    """Needs → achievements of the shipped demo corpus, judged by ``demo_pairs.csv`` (written by the same authors
    as the records, so the engine's defaults fit it by construction)."""
    ach = pd.read_json(corpus_dir / "achievements.jsonl", lines=True, dtype=False)
    needs = pd.read_json(corpus_dir / "needs.jsonl", lines=True, dtype=False)
    pairs = pd.read_csv(corpus_dir / "demo_pairs.csv", dtype=str)
    qrels: dict[str, dict[str, int]] = {}
    for r in pairs.itertuples(index=False):
        qrels.setdefault(str(r.need_id), {})[str(r.achievement_id)] = int(r.relevance)
    return Dataset("demo_need_achievement", "demo", ach, needs, qrels,
                   note="demo corpus: tuned by construction (the pairs were written with the records)")
