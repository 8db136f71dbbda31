"""spark-match against the single-process match on the same work (issue 14): needs/s, overhead, speed-up, memory.

Usage: .venv/bin/python -m benchmarks.spark_scale --out benchmarks/results [--n 20000] [--needs 5000]

Seeded synthetic achievements (``--n``) are indexed once (LSA encoder: the default encoder's model load would be
timed in each Spark worker too, and this measures the job, not the encoder); ``--needs`` synthetic needs are then
matched, top 10, by three fresh processes, one after the other:

* ``qcy-match match`` (one process, one BLAS thread): the anchor;
* ``qcy-match spark-match --master local[1]``: the overhead of Spark at equal cores (JVM start, Arrow transfers,
  validation and duplicate check as separate stages);
* ``qcy-match spark-match --master local[2]``: the 1 → 2 core speed-up.

Each run's wall time is the whole command (Spark's start included). Memory: the peak RSS of the anchor process,
and for Spark the peak RSS of the JVM and of each Python worker (an executor's matching process, which holds the
index once), sampled every 0.2 s over the process tree. Outputs are checked to hold the same rows.
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

import pandas as pd
import psutil

from benchmarks import synth

CLI = [sys.executable, "-m", "qcy_match.cli"]


def _write(df: pd.DataFrame, path: Path) -> Path:
    df.to_json(path, orient="records", lines=True, force_ascii=False)
    return path


def _run(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Wall time and peak RSS (MiB) of the process tree: the main process, the JVM, the biggest Python worker."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    top = psutil.Process(proc.pid)
    peak: dict[int, tuple[str, float]] = {}
    while proc.poll() is None:
        try:
            for p in [top, *top.children(recursive=True)]:
                with p.oneshot():
                    rss = p.memory_info().rss / 2**20
                    kind = "jvm" if "java" in p.name() else "worker" if p.pid != top.pid else "main"
                if rss > peak.get(p.pid, ("", 0.0))[1]:
                    peak[p.pid] = (kind, rss)
        except psutil.Error:
            pass
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.read()[-2000:]}")

    def most(kind: str) -> float:
        return max((r for k, r in peak.values() if k == kind), default=0.0)

    workers = [r for k, r in peak.values() if k == "worker" and r > 100]  # the daemon's idle forks are small
    return {"wall_s": wall, "main_rss_mib": most("main"), "jvm_rss_mib": most("jvm"),
            "worker_rss_mib": max(workers, default=0.0), "workers": len(workers)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--n", type=int, default=20_000, help="achievements indexed")
    ap.add_argument("--needs", type=int, default=5_000, help="needs matched")
    args = ap.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    result: dict[str, object] = {"achievements": args.n, "needs": args.needs, "top_k": 10, "encoder": "lsa",
                                 "cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        achievements = _write(synth.generate(args.n, seed=14), tmp / "achievements.jsonl")
        needs = _write(synth.generate(args.needs, seed=14, kind="needs"), tmp / "needs.jsonl")
        subprocess.run([*CLI, "index", "--achievements", str(achievements), "--out", str(tmp / "index"),
                        "--encoder", "lsa"], check=True, env=env, stderr=subprocess.DEVNULL)
        common = ["--index", str(tmp / "index"), "--needs", str(needs), "--top-k", "10"]
        runs = {"match": _run([*CLI, "match", *common, "--out", str(tmp / "match.csv")], env)}
        for cores in (1, 2):
            runs[f"spark_local{cores}"] = _run([*CLI, "spark-match", *common, "--out", str(tmp / f"spark{cores}"),
                                                "--master", f"local[{cores}]"], env)
        rows = {"match": len(pd.read_csv(tmp / "match.csv"))}
        for cores in (1, 2):
            parts = sorted((tmp / f"spark{cores}" / "matches").glob("part-*.csv"))
            rows[f"spark_local{cores}"] = sum(len(pd.read_csv(p)) for p in parts if p.stat().st_size)
        if len(set(rows.values())) != 1:
            raise SystemExit(f"the runs wrote different numbers of rows: {rows}")
    for run in runs.values():
        run["needs_per_s"] = args.needs / run["wall_s"]
    one, two, anchor = runs["spark_local1"], runs["spark_local2"], runs["match"]
    result.update(runs=runs, rows=rows["match"], overhead_equal_cores=one["wall_s"] / anchor["wall_s"],
                  speedup_1_to_2=one["wall_s"] / two["wall_s"],
                  spark2_vs_match=anchor["wall_s"] / two["wall_s"], load_after=os.getloadavg()[0])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "spark_scale.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    lines = [f"# spark-match vs match: {args.needs:,} needs × {args.n:,} achievements, top 10, LSA",
             "", f"Machine: {os.cpu_count()} CPUs, load average {result['load_before']:.1f} before, "
             f"{result['load_after']:.1f} after (shared machine).", "",
             "| run | wall s | needs/s | main RSS MiB | JVM RSS MiB | largest Python worker RSS MiB |",
             "|---|---|---|---|---|---|"]
    for name, r in runs.items():
        lines.append(f"| {name} | {r['wall_s']:.1f} | {r['needs_per_s']:.0f} | {r['main_rss_mib']:.0f} | "
                     f"{r['jvm_rss_mib']:.0f} | {r['worker_rss_mib']:.0f} |")
    lines += ["", f"- overhead at equal cores (spark local[1] / match wall): {result['overhead_equal_cores']:.2f}×",
              f"- speed-up local[1] → local[2]: {result['speedup_1_to_2']:.2f}×",
              f"- local[2] vs single-process match: {result['spark2_vs_match']:.2f}× faster"]
    (args.out / "spark_scale.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
