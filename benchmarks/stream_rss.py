"""Peak RSS of a streamed `qcy-match match` over generated needs files of growing size (issue 6, item 4).

Usage: .venv/bin/python benchmarks/stream_rss.py 10000 50000 [--encoder lsa]

Each run is a fresh `qcy-match match --index ... --top-k 3` process; its peak RSS comes from os.wait4. Needs are the
demo needs repeated under new ids (short synthetic texts). Memory that stays flat as the file grows is the bound.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_needs(path: Path, n: int) -> None:
    base = [json.loads(line) for line in (ROOT / "corpora" / "needs.jsonl").read_text(encoding="utf-8").splitlines()]
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps(dict(base[i % len(base)], id=f"N{i:07d}"), ensure_ascii=False) + "\n")


def run(cmd: list[str]) -> tuple[float, float]:
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{cmd} failed with status {status}")
    return time.time() - t0, usage.ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sizes", type=int, nargs="+")
    ap.add_argument("--encoder", default="lsa")
    args = ap.parse_args()
    cli = [sys.executable, "-m", "qcy_match.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        idx = Path(tmp) / "idx"
        subprocess.run([*cli, "index", "--achievements", str(ROOT / "corpora" / "achievements.jsonl"), "--out",
                        str(idx), "--encoder", args.encoder], check=True, stderr=subprocess.DEVNULL)
        print("| needs rows | file MB | wall s | needs/s | peak RSS MiB |\n|---|---|---|---|---|")
        for n in args.sizes:
            needs, out = Path(tmp) / f"needs{n}.jsonl", Path(tmp) / f"out{n}.csv"
            make_needs(needs, n)
            wall, rss = run([*cli, "match", "--index", str(idx), "--needs", str(needs), "--out", str(out),
                             "--top-k", "3"])
            print(f"| {n:,} | {needs.stat().st_size / 2**20:.0f} | {wall:.0f} | {n / wall:.0f} | {rss:.0f} |",
                  flush=True)
            needs.unlink()
            out.unlink()


if __name__ == "__main__":
    main()
