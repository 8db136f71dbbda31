"""Batch matching end to end: the default numpy/FAISS path against the torch device path (issue 18, target 8).

``python -m benchmarks.gpu_batch --records 100000 --needs 20000 --device cpu --threads 2`` builds the default engine
over ``records`` synthetic achievements (:mod:`benchmarks.synth`), then matches ``needs`` synthetic needs (k=10,
explanations on, the default configuration) on each path and reports needs/s, their ratio, where the device path's
time goes (device scoring vs the host's tokenising, encoding and explanations) and how many top-10 lists the two
paths share (the rest differ at near-ties, or where the device's exact dense top-k finds what HNSW misses).

``--index-dir`` keeps the built index for the next run. ``--cpu-needs`` times the default path on the first that
many needs only (at 1M × 1M it would take hours), with ``--cpu-threads`` threads (2: the 2-core CPU path) while the
device path's host work gets ``--threads``; ``--needs 100000,1000000`` times the device path at each size over one
index (benchmarks/device_run.sh).
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
    """At most ``n`` threads in torch, FAISS and the BLAS behind numpy (0: every core)."""
    n = n or os.cpu_count() or 1
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
    sizes = [int(x) for x in str(args.needs).split(",")]
    out: dict[str, Any] = {"records": args.records, "needs": sizes, "device": args.device,
                           "threads": args.threads or os.cpu_count(), "cpu_threads": args.cpu_threads or args.threads,
                           "encoder": args.encoder or "default"}
    t = time.perf_counter()
    needs = synth.generate(max(sizes), seed=0, kind="needs")
    out["generate_s"] = round(time.perf_counter() - t, 1)
    config = EngineConfig(**({"encoder": args.encoder} if args.encoder else {}))
    t = time.perf_counter()
    if args.index_dir and args.index_dir.is_dir():
        engine = MatchEngine.load(args.index_dir)
        out["load_s"] = round(time.perf_counter() - t, 1)
    else:
        ach = synth.generate(args.records, seed=0)
        engine = MatchEngine(config).index(ach, show_progress=args.progress)
        out["build_s"] = round(time.perf_counter() - t, 1)
        if args.index_dir:
            engine.save(args.index_dir)
    out["dense_kind"] = engine.dense_.kind_
    report(args, out)
    filters = args.filter or None
    results = {}
    if args.path in ("both", "numpy"):
        limit_threads(args.cpu_threads or args.threads)
        sub = needs.iloc[:args.cpu_needs] if args.cpu_needs else needs.iloc[:sizes[0]]
        # The host's share that both paths pay alike: tokenising and encoding the needs (timed on a sample).
        t = time.perf_counter()
        engine.vectors(sub.iloc[:2000])
        out["encode_ms_per_need"] = round(1000 * (time.perf_counter() - t) / len(sub.iloc[:2000]), 3)
        engine.match(sub.iloc[:50], k=10, filters=filters)  # warm-up
        t = time.perf_counter()
        results["numpy"] = engine.match(sub, k=10, filters=filters, show_progress=args.progress)
        secs = time.perf_counter() - t
        out["numpy"] = {"needs": len(sub), "seconds": round(secs, 2), "needs_per_s": round(len(sub) / secs, 1)}
        report(args, out)
    if args.path in ("both", "device"):
        limit_threads(args.threads)
        t = time.perf_counter()
        engine.match(needs.iloc[:50], k=10, filters=filters, device=args.device)  # torch import, index to the device
        out["device_setup_s"] = round(time.perf_counter() - t, 2)
        spent = timed_device_scoring()
        for n in sizes:
            spent.update(score_s=0.0, chunks=0)
            t = time.perf_counter()
            got = engine.match(needs.iloc[:n], k=10, filters=filters, device=args.device,
                               show_progress=args.progress)
            secs = time.perf_counter() - t
            row = {"needs": n, "seconds": round(secs, 2), "needs_per_s": round(n / secs, 1),
                   "device_scoring_s": round(spent["score_s"], 2), "host_s": round(secs - spent["score_s"], 2),
                   "chunks": spent["chunks"]}
            if "numpy" in out:
                row["ratio_to_numpy"] = round(row["needs_per_s"] / out["numpy"]["needs_per_s"], 2)
                m = out["numpy"]["needs"]
                a, b = results["numpy"].ids[:m], got.ids[:m]
                row["top10_lists_equal"] = round(float((a == b).all(axis=1).mean()), 4)
                row["top1_equal"] = round(float((a[:, 0] == b[:, 0]).mean()), 4)
            out[f"device_{n}"] = row
            del got
            report(args, out)
    return out


def report(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """Write the figures so far (a run cut short still leaves them)."""
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--needs", default="20000", help="needs to match on the device path; several: 100000,1000000")
    ap.add_argument("--cpu-needs", type=int, default=0, help="time the default path on this many needs (0: all)")
    ap.add_argument("--device", default="cpu", help="cuda, or cpu for torch's CPU backend")
    ap.add_argument("--path", choices=["both", "numpy", "device"], default="both")
    ap.add_argument("--threads", type=int, default=2, help="threads for torch, FAISS and BLAS (0: all cores)")
    ap.add_argument("--cpu-threads", type=int, default=0, help="threads while the default path is timed (0: --threads)")
    ap.add_argument("--encoder", default=None, help="dense encoder (default: the engine's default)")
    ap.add_argument("--filter", action="append", default=[], metavar="KEY=V", help="e.g. industry=C")
    ap.add_argument("--index-dir", type=Path, default=None,
                    help="load the index from here if it exists, else build it and save it here")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="JSON file for the figures")
    args = ap.parse_args()
    print(json.dumps(run(args), ensure_ascii=False, indent=1), flush=True)


if __name__ == "__main__":
    main()
