"""BM25 retrieval at two corpus sizes: pruned top-k (:meth:`SparseIndex.top`) against a full scan, same run.

Records are recombined from CSL abstract sentences with a seeded sampler (a title and 3–8 sentences, the length and
vocabulary of real records); needs likewise (2–5 sentences, full length). Sentences are tokenised once and their
token lists concatenated, so a 300k corpus builds in seconds. Reports per-query p50 of the pruned and the full-scan
top-k (unfiltered, and with a filter keeping ~10 %), and checks they return the same lists.

    python -m benchmarks.sparse_scale --sizes 30000 300000
"""

from __future__ import annotations

import argparse
import json
import re
import time

import numpy as np

from qcy_match.index import sparse as sparse_mod
from qcy_match.index.sparse import SparseIndex
from qcy_match.index.topk import top_k
from qcy_match.text import Tokenizer

from .datasets import default_data, load_csl


def sentences(seed: int = 0) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """Tokens of CSL titles and abstract sentences (document tokens and query tokens)."""
    papers, _ = load_csl(default_data())
    tok = Tokenizer()
    sents = [s for p in papers for s in re.split(r"(?<=[。；;])", p["abstract"]) if len(s) > 8]
    titles = [tok.tokenize(p["title"]) for p in papers]
    return titles, [tok.tokenize(s) for s in sents], [tok.tokenize(s, search_mode=False) for s in sents]


def corpus(n: int, titles: list[list[str]], sents: list[list[str]], rng: np.random.Generator,
           lo: int = 3, hi: int = 8) -> list[list[str]]:
    """``n`` token lists: a title and lo..hi sentences, drawn with replacement."""
    out = []
    for _ in range(n):
        doc = list(titles[rng.integers(len(titles))])
        for j in rng.integers(len(sents), size=rng.integers(lo, hi + 1)):
            doc += sents[j]
        out.append(doc)
    return out


def p50_ms(fn, queries: list[list[str]]) -> float:  # type: ignore[no-untyped-def]
    times = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)


def measure(ix: SparseIndex, needs: list[list[str]], mask: np.ndarray, pool: int) -> dict[str, object]:
    """Pruned and full-scan p50 of one index, unfiltered and filtered, and whether their lists agree."""
    def full(q: list[str], m: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        s = ix.scores(q)
        j, v = top_k(s if m is None else np.where(m, s, 0.0), pool)
        return j[v > 0], v[v > 0]

    same = all(np.array_equal(ix.top(q, pool, m)[0], full(q, m)[0]) for q in needs for m in (None, mask))
    return {"same_lists": same,
            "pruned_p50_ms": p50_ms(lambda q: ix.top(q, pool), needs),
            "full_p50_ms": p50_ms(full, needs),
            "pruned_filtered_p50_ms": p50_ms(lambda q: ix.top(q, pool, mask), needs),
            "full_filtered_p50_ms": p50_ms(lambda q: full(q, mask), needs)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[30_000, 300_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--pool", type=int, default=100)
    args = ap.parse_args()
    titles, doc_sents, q_sents = sentences()
    rng = np.random.default_rng(0)
    needs = [sum((q_sents[j] for j in rng.integers(len(q_sents), size=rng.integers(2, 6))), [])
             for _ in range(args.queries)]
    rows = []
    for n in args.sizes:
        docs = corpus(n, titles, doc_sents, np.random.default_rng(n))
        ix = SparseIndex().fit(docs)
        del docs
        mask = np.random.default_rng(1).random(n) < 0.1
        sparse_mod.PRUNE = True
        ix._rows(), ix._impact()  # built on first use: not part of a query's time

        row = {"n": n, **measure(ix, needs, mask, args.pool)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        print(json.dumps({f"growth_{k}": round(b[k] / a[k], 2) for k in a if k.endswith("_ms")}))


if __name__ == "__main__":
    main()
