"""Dense index memory, build time, recall and latency per storage (float32 / float16 / sq8), one process per run.

``python -m benchmarks.index_memory --n 100000 --storage sq8 --out r.json``: clustered unit vectors (a seeded 48-d
latent mapped to 512-d plus noise), recall@10 against exact float32 search, single-query latency at
top-10 and top-100 (the engine's candidate pool) without a filter and with 5 % and 20 % of positions kept, peak RSS.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from qcy_match.index.dense import DenseIndex

from .speed import peak_rss_mib, rss_mib


def clustered(n: int, d: int, seed: int, noise: float, rank: int = 48) -> np.ndarray:
    """Unit vectors with the low intrinsic dimension of sentence embeddings: a seeded ``rank``-dimensional latent
    mapped into ``d`` dimensions, plus isotropic noise (the query set shares the mapping)."""
    w = np.random.default_rng(12345).standard_normal((rank, d)).astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((n, d), np.float32)
    for s in range(0, n, 65_536):
        m = min(n, s + 65_536) - s
        x = rng.standard_normal((m, rank)).astype(np.float32) @ w
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        x += noise * rng.standard_normal((m, d)).astype(np.float32) / np.sqrt(d)
        out[s:s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def exact(x: np.ndarray, q: np.ndarray, k: int, mask: np.ndarray | None = None) -> np.ndarray:
    s = q @ x.T
    if mask is not None:
        s[:, ~mask] = -np.inf
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def p50_ms(index: DenseIndex, q: np.ndarray, k: int, mask: np.ndarray | None) -> float:
    for i in range(5):
        index.search(q[i:i + 1], k, mask)
    t = []
    for i in range(len(q)):
        t0 = time.perf_counter()
        index.search(q[i:i + 1], k, mask)
        t.append(time.perf_counter() - t0)
    return float(np.median(t) * 1000)


def run(n: int, storage: str, d: int, n_queries: int, ef_search: int, seed: int, noise: float) -> dict[str, Any]:
    x = clustered(n, d, seed, noise)
    q = clustered(n_queries, d, seed + 1, noise)
    rng = np.random.default_rng(seed + 2)
    masks = {"5%": rng.random(n) < 0.05, "20%": rng.random(n) < 0.2}
    truth = exact(x, q, 10)
    truth_m = {name: exact(x, q, 10, m) for name, m in masks.items()}
    rss0 = rss_mib()
    t0 = time.perf_counter()
    index = DenseIndex("hnsw", storage=storage, ef_search=ef_search).fit(x)
    build_s = time.perf_counter() - t0
    rss1 = rss_mib()
    del x
    out: dict[str, Any] = {"n": n, "d": d, "noise": noise, "storage": index.storage_, "ef_search": ef_search,
                           "build_s": build_s,
                           "index_rss_mib": rss1 - rss0, "rss_after_build_mib": rss1, "rss_without_input_mib":
                           rss_mib(), "peak_rss_mib": peak_rss_mib()}
    out["recall@10"] = recall(index.search(q, 10)[0], truth)
    out["recall@10_filtered"] = {name: recall(index.search(q, 10, m)[0], truth_m[name]) for name, m in masks.items()}
    out["p50_ms"] = {f"top{k}_{name}": p50_ms(index, q[:100], k, m)
                     for k in (10, 100) for name, m in [("none", None), *masks.items()]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--storage", default="auto")
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--ef-search", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--noise", type=float, default=0.2, help="noise norm relative to the unit signal")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    r = run(args.n, args.storage, args.d, args.queries, args.ef_search, args.seed, args.noise)
    args.out.write_text(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
