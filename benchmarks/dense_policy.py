"""Dense index policies at one size: thread policy under a busy CPU, memory-mapped opening, filtered recall.

``python -m benchmarks.dense_policy --n 100000 --out r.json``, on clustered unit vectors (:func:`.index_memory.
clustered`), one default-configured :class:`DenseIndex` built once and saved:

* thread policy: single-query p50/p95/p99 (top-100, the engine's candidate pool; unfiltered and with 5 % kept) with
  a CPU-bound process running beside the search (``python -c 'while 1: pass'``), with every search on all
  OpenMP/BLAS threads (``parallel_from=0``, the behaviour before the policy) and with the default policy;
* opening: seconds to load the saved index and the process's anonymous / file-backed RSS after opening and after
  the queries, read into memory (``mmap=False``, before) and memory-mapped (the default), each in a fresh process;
* filtered recall@10 against exact filtered search, through the graph (``exact_below=0``) and with the defaults,
  at 50 %, 10 %, 1 % and 0.1 % kept, with the share of short lists.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from qcy_match.index.dense import DenseIndex

from .index_memory import clustered, exact, recall

SELECTIVITIES = (0.5, 0.1, 0.01, 0.001)


def _rss() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("RssAnon", "RssFile")):
            name, value = line.split(":")
            out[name] = int(value.split()[0]) / 1024
    return out


def _latency(index: DenseIndex, q: np.ndarray, mask: np.ndarray | None) -> dict[str, float]:
    for i in range(5):
        index.search(q[i:i + 1], 100, mask)
    t = []
    for i in range(len(q)):
        t0 = time.perf_counter()
        index.search(q[i:i + 1], 100, mask)
        t.append(time.perf_counter() - t0)
    p50, p95, p99 = np.percentile(np.array(t) * 1000, [50, 95, 99])
    return {"p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "p99_over_p50": p99 / p50}


def _with_exact_below(index: DenseIndex, exact_below: int) -> DenseIndex:
    """The same built index with another strict-filter threshold (read at search time; 0: always the graph)."""
    out = copy.copy(index)
    out.exact_below = exact_below
    return out


def open_once(path: Path, mmap: bool, d: int, n_queries: int) -> dict[str, Any]:
    """Run in a fresh process: open time and RSS of a saved index, read or mapped."""
    params = json.loads((path / "params.json").read_text())
    before = _rss()
    t0 = time.perf_counter()
    index = DenseIndex.load(path, params["params"], params["kind"], mmap=mmap)
    open_s = time.perf_counter() - t0
    opened = _rss()
    q = clustered(n_queries, d, 1, 0.2)
    index.search(q, 100)
    searched = _rss()
    return {"open_s": open_s, "rss_before_mib": before, "rss_opened_mib": opened, "rss_after_queries_mib": searched}


def run(n: int, d: int, n_queries: int, path: Path) -> dict[str, Any]:
    x = clustered(n, d, 0, 0.2)
    q = clustered(n_queries, d, 1, 0.2)
    t0 = time.perf_counter()
    index = DenseIndex().fit(x)
    out: dict[str, Any] = {"n": n, "d": d, "kind": index.kind_, "storage": index.storage_,
                           "tuning": vars(index.tuning_), "build_s": time.perf_counter() - t0}
    out["recall@10"] = recall(index.search(q, 10)[0], exact(x, q, 10))
    path.mkdir(parents=True, exist_ok=True)
    index.save(path)
    (path / "params.json").write_text(json.dumps({"params": index.params(), "kind": index.kind_}))
    rng = np.random.default_rng(7)
    five = rng.random(n) < 0.05
    busy = subprocess.Popen([sys.executable, "-c", "while 1: pass"])
    try:
        out["busy_cpu"] = {}
        for policy, parallel_from in (("all_threads", 0), ("policy", index.parallel_from)):
            index.parallel_from = parallel_from
            out["busy_cpu"][policy] = {"unfiltered": _latency(index, q, None), "5%": _latency(index, q, five)}
        index.parallel_from = DenseIndex().parallel_from
    finally:
        busy.kill()
        busy.wait()
    out["filtered"] = {}
    u = rng.random(n)
    for sel in SELECTIVITIES:
        keep = u < sel
        truth = exact(x, q, 10, keep)
        want = min(10, int(keep.sum()))
        row = {"kept": int(keep.sum())}
        for name, exact_below in (("graph", 0), ("default", index.exact_below)):
            found = _with_exact_below(index, exact_below).search(q, 10, keep)[0]
            row[f"{name}_recall@10"] = recall(found[:, :want], truth[:, :want])
            row[f"{name}_short_share"] = float(np.mean((found[:, :want] < 0).any(axis=1)))
        out["filtered"][str(sel)] = row
    del index, x
    out["open"] = {}
    for name, mmap in (("read", False), ("mmap", True)):
        res = subprocess.run([sys.executable, "-m", "benchmarks.dense_policy", "--open", str(path),
                              "--d", str(d), "--queries", str(n_queries)] + (["--mmap"] if mmap else []),
                             check=True, capture_output=True, text=True)
        out["open"][name] = json.loads(res.stdout)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--open", type=Path, help=argparse.SUPPRESS)  # the fresh process that opens a saved index
    ap.add_argument("--mmap", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.open is not None:
        print(json.dumps(open_once(args.open, args.mmap, args.d, args.queries)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        r = run(args.n, args.d, args.queries, Path(tmp) / "index")
    text = json.dumps(r, indent=1, default=float)
    if args.out is not None:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
