"""Batch matching end to end: the default numpy/FAISS path against the torch device path (issue 18, target 8).

``python -m benchmarks.gpu_batch --records 100000 --needs 20000 --device cpu --threads 2`` builds the default engine
over ``records`` synthetic achievements (:mod:`benchmarks.synth`), then matches ``needs`` synthetic needs (k=10,
explanations on, the default configuration) on each path and reports needs/s, their ratio, where the device path's
time goes (device scoring vs the host's tokenising, encoding and explanations) and how many top-10 lists the two
paths share (the rest differ at near-ties, or where the device's exact dense top-k finds what HNSW misses).

``--cpu-needs`` times the default path on the first that many needs only (at 1M × 1M it would take hours);
``--path`` runs one path alone, so the default path can be timed in a process pinned to 2 cores
(``taskset -c 0,1``) while the device path uses the whole machine (benchmarks/device_run.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from qcy_match import EngineConfig, MatchEngine
from qcy_match.match import device as dev

from . import synth


def limit_threads(n: int) -> None:
    """At most ``n`` threads in torch, FAISS and the BLAS behind numpy."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)
    try:
        import faiss

        faiss.omp_set_num_threads(n)
    except ImportError:
        pass
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass


def timed_device_scoring() -> dict[str, float]:
    """Wrap :func:`qcy_match.match.device.score_chunk` to add up its seconds (it ends with a copy to the host, so
    the device's work is finished when it returns)."""
    spent = {"score_s": 0.0, "chunks": 0}
    inner = dev.score_chunk

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        out = inner(*args, **kwargs)
        spent["score_s"] += time.perf_counter() - t
        spent["chunks"] += 1
        return out

    dev.score_chunk = wrapped  # type: ignore[assignment]
    return spent


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.threads:
        limit_threads(args.threads)
    out: dict[str, Any] = {"records": args.records, "needs": args.needs, "device": args.device,
                           "threads": args.threads or os.cpu_count(), "encoder": args.encoder or "default"}
    t = time.perf_counter()
    ach = synth.generate(args.records, seed=0)
    needs = synth.generate(args.needs, seed=0, kind="needs")
    out["generate_s"] = round(time.perf_counter() - t, 1)
    config = EngineConfig(**({"encoder": args.encoder} if args.encoder else {}))
    t = time.perf_counter()
    engine = MatchEngine(config).index(ach, show_progress=args.progress)
    out["build_s"] = round(time.perf_counter() - t, 1)
    out["dense_kind"] = engine.dense_.kind_
    filters = args.filter or None
    results = {}
    if args.path in ("both", "numpy"):
        sub = needs.iloc[:args.cpu_needs] if args.cpu_needs else needs
        engine.match(sub.iloc[:50], k=10, filters=filters)  # warm-up
        t = time.perf_counter()
        results["numpy"] = engine.match(sub, k=10, filters=filters, show_progress=args.progress)
        secs = time.perf_counter() - t
        out["numpy"] = {"needs": len(sub), "seconds": round(secs, 2), "needs_per_s": round(len(sub) / secs, 1)}
    if args.path in ("both", "device"):
        t = time.perf_counter()
        engine.match(needs.iloc[:50], k=10, filters=filters, device=args.device)  # torch import, index to the device
        setup = time.perf_counter() - t
        spent = timed_device_scoring()
        t = time.perf_counter()
        results["device"] = engine.match(needs, k=10, filters=filters, device=args.device,
                                         show_progress=args.progress)
        secs = time.perf_counter() - t
        out["device_path"] = {"needs": len(needs), "seconds": round(secs, 2),
                              "needs_per_s": round(len(needs) / secs, 1),
                              "setup_s": round(setup, 2), "device_scoring_s": round(spent["score_s"], 2),
                              "host_s": round(secs - spent["score_s"], 2), "chunks": spent["chunks"]}
    if "numpy" in out and "device_path" in out:
        out["ratio"] = round(out["device_path"]["needs_per_s"] / out["numpy"]["needs_per_s"], 2)
        m = out["numpy"]["needs"]
        a, b = results["numpy"].ids[:m], results["device"].ids[:m]
        out["top10_lists_equal"] = round(float((a == b).all(axis=1).mean()), 4)
        out["top1_equal"] = round(float((a[:, 0] == b[:, 0]).mean()), 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--needs", type=int, default=20_000)
    ap.add_argument("--cpu-needs", type=int, default=0, help="time the default path on this many needs (0: all)")
    ap.add_argument("--device", default="cpu", help="cuda, or cpu for torch's CPU backend")
    ap.add_argument("--path", choices=["both", "numpy", "device"], default="both")
    ap.add_argument("--threads", type=int, default=2, help="threads for torch, FAISS and BLAS (0: all cores)")
    ap.add_argument("--encoder", default=None, help="dense encoder (default: the engine's default)")
    ap.add_argument("--filter", action="append", default=[], metavar="KEY=V", help="e.g. industry=C")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="JSON file for the figures")
    args = ap.parse_args()
    res = run(args)
    text = json.dumps(res, ensure_ascii=False, indent=1)
    print(text, flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
