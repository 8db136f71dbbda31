"""Batch needs/s of ``engine.match(needs)`` against the raw pipeline's batch, on the realistic corpus, with the
engine's query encoding timed apart (issue 18 target 2).

    python -m benchmarks.batch_speed --n 30000 --index /tmp/idx30k            # builds and saves it if missing
    python -m benchmarks.batch_speed --n 30000 --index /tmp/idx30k --code /path/to/other/checkout

The engine is opened from ``--index`` (a saved realistic index of ``--n`` records, seed 0; built and saved there
when missing) and matches ``--needs`` full-length needs with explanations on, default configuration; the raw
pipeline (:class:`benchmarks.scale_realistic.RawPipeline`: rjieba + bm25s + the engine's encoder + FAISS)
is built over the same records and runs the same needs. Both run ``--rounds`` times alternately and the best round
of each is kept. ``query encoding`` is the engine's own tokenising and encoding of the needs
(:meth:`MatchEngine.vectors`), which the batch includes: both sides encode a need's whole text (cut by the
encoder, ``query_dense_text="full"``). One JSON line goes to stdout.

``--vectors PATH`` measures everything but the encoder: the encoder both sides share returns vectors computed
beforehand (and kept in PATH, ``.npy`` plus a ``.json`` of the texts, to reuse across checkouts), so the figure
shows what the engine adds to encoding (tokenising, BM25, FAISS, fusion, explanations, confidence).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def precomputed(engine: Any, needs: pd.DataFrame, texts: list[str], path: Path) -> None:
    """Make the engine's encoder (the raw pipeline's too: it is the same object) return vectors computed once."""
    from qcy_match.ingest.records import from_any

    keys = list(dict.fromkeys(engine._texts(from_any(needs)[0]) + texts))
    names = path.with_suffix(".json")
    if not names.is_file() or json.loads(names.read_text(encoding="utf-8")) != keys:
        vecs = engine.encoder_.encode(keys, [engine.tokenizer_.tokenize(k, normalized=True) for k in keys])
        np.save(path.with_suffix(".npy"), np.asarray(vecs, np.float32), allow_pickle=False)
        names.write_text(json.dumps(keys, ensure_ascii=False), encoding="utf-8")
    table = np.load(path.with_suffix(".npy"), allow_pickle=False)
    row = {k: i for i, k in enumerate(keys)}
    engine.encoder_.encode = lambda texts, tokens: table[[row[t] for t in texts]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30_000)
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--needs", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--vectors", type=Path, default=None, help="precomputed query vectors (see above)")
    args = ap.parse_args(argv)
    from qcy_match import EngineConfig, MatchEngine

    from . import realistic
    from .scale_realistic import RawPipeline, texts_of

    corpus = realistic.achievements(args.n, 0)
    if not (args.index / "manifest.json").is_file():
        MatchEngine(EngineConfig()).index(corpus).save(args.index)
    engine = MatchEngine.load(args.index)
    needs = realistic.needs(args.needs, args.n, 0)
    raw = RawPipeline(engine, corpus, encode_sample=50)
    texts = texts_of(needs)
    if args.vectors is not None:
        precomputed(engine, needs, texts, args.vectors)
    engine.match(needs.iloc[:20], k=10)  # warm: caches of the index, the encoder's weights
    raw.batch(texts[:20])
    load = [round(x, 2) for x in os.getloadavg()]
    best = {"engine": float("inf"), "raw": float("inf"), "encode": float("inf")}
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        engine.match(needs, k=10, explain_matches=True)
        t1 = time.perf_counter()
        raw.batch(texts)
        t2 = time.perf_counter()
        engine.vectors(needs)
        t3 = time.perf_counter()
        best = {"engine": min(best["engine"], t1 - t0), "raw": min(best["raw"], t2 - t1),
                "encode": min(best["encode"], t3 - t2)}
    n = len(needs)
    out = {"n": args.n, "needs": n, "engine_needs_per_s": n / best["engine"], "raw_needs_per_s": n / best["raw"],
           "engine_over_raw": best["raw"] / best["engine"], "query_encoding_s_per_need": best["encode"] / n,
           "engine_without_encoding_needs_per_s": n / max(1e-9, best["engine"] - best["encode"]),
           "load_avg_start": load, "load_avg_end": [round(x, 2) for x in os.getloadavg()],
           "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "precomputed_vectors": args.vectors is not None}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
