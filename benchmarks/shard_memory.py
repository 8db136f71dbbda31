"""Memory of a worker that opens one shard of a sharded index, against one that loads the whole index.

``python -m benchmarks.shard_memory --n 100000 --shards 2 4 8 --out benchmarks/results`` builds ``n`` synthetic
achievements once (default configuration), saves them unsharded and with each shard count, then measures, each in
a fresh process: the RSS of a process that loads the unsharded index (the anchor), of one that opens shard 0 alone
with the corpus-wide statistics (what a Spark executor holding that shard keeps), and of one that loads the whole
sharded index. Each process also matches 200 synthetic needs so lazily built parts (filters, BM25 weights) count.
Writes ``shard_memory.json`` and ``shard_memory.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import synth
from .speed import dir_size, peak_rss_mib, rss_mib


def worker(path: str, mode: str, shard: int) -> dict[str, Any]:
    """Run in a fresh process: open the index as ``mode`` says, match needs, report memory."""
    from qcy_match import MatchEngine
    from qcy_match.ingest.records import from_any
    from qcy_match.match import distributed as dist

    needs = synth.generate(200, seed=7, kind="needs")
    base = rss_mib()
    t0 = time.perf_counter()
    if mode == "shard":
        opened = dist.open_shard(path, shard)
        open_s = time.perf_counter() - t0
        queries = from_any(needs)[0].assign(_row=range(len(needs)))
        dist.shard_pools(opened, queries, queries["_row"], 10, {})
    else:
        engine = MatchEngine.load(path)
        open_s = time.perf_counter() - t0
        engine.match(needs, k=10)
    return {"mode": mode, "open_s": open_s, "base_rss_mib": base, "rss_mib": rss_mib(), "peak_rss_mib": peak_rss_mib()}


def measure(path: Path, mode: str, shard: int = 0) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.shard_memory", "--worker", str(path), "--mode", mode,
                          "--shard", str(shard)], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--shards", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--encoder", default="usem3")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="shard", help=argparse.SUPPRESS)
    ap.add_argument("--shard", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.mode, args.shard)))
        return
    from qcy_match import EngineConfig, MatchEngine

    t0 = time.perf_counter()
    engine = MatchEngine(EngineConfig(encoder=args.encoder)).index(synth.generate(args.n, seed=0))
    result: dict[str, Any] = {"n": args.n, "encoder": args.encoder, "build_s": time.perf_counter() - t0, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        flat = engine.save(Path(tmp) / "flat")
        anchor = measure(flat, "whole")
        result["unsharded"] = {**anchor, "disk_mib": dir_size(flat) / 2**20}
        for n in args.shards:
            t0 = time.perf_counter()
            path = engine.save(Path(tmp) / f"s{n}", shards=n)
            save_s = time.perf_counter() - t0
            one, whole = measure(path, "shard"), measure(path, "whole")
            result["runs"].append({"shards": n, "save_s": save_s, "disk_mib": dir_size(path) / 2**20,
                                   "shard": one, "whole": whole})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "shard_memory.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    (args.out / "shard_memory.md").write_text(report(result), encoding="utf-8")
    print(report(result))


def report(r: dict[str, Any]) -> str:
    a = r["unsharded"]
    grow = a["rss_mib"] - a["base_rss_mib"]
    lines = [f"# Memory per shard-opening worker ({r['n']:,} synthetic achievements, encoder {r['encoder']})", "",
             "RSS after opening and matching 200 needs, each in a fresh process; 'index' is the RSS beyond the "
             "process before opening (Python, libraries, the needs).", "",
             "| layout | disk MiB | open s | RSS MiB | index MiB | ÷ unsharded index |", "|---|---|---|---|---|---|",
             f"| unsharded, whole | {a['disk_mib']:.0f} | {a['open_s']:.1f} | {a['rss_mib']:.0f} | {grow:.0f} | 1.00 |"]
    for run in r["runs"]:
        for label, m in ((f"{run['shards']} shards, one shard alone", run["shard"]),
                         (f"{run['shards']} shards, whole", run["whole"])):
            g = m["rss_mib"] - m["base_rss_mib"]
            disk = run["disk_mib"] / (run["shards"] if "alone" in label else 1)
            lines.append(f"| {label} | {disk:.0f} | {m['open_s']:.1f} | {m['rss_mib']:.0f} | {g:.0f} | "
                         f"{g / grow:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
