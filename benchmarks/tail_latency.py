"""Single-need tail latency beside CPU-bound processes, per stage: issue 18 target 3 (p99 ≤ 2.5× p50 beside a hog).

    python -m benchmarks.tail_latency --n 40000 --out benchmarks/results            # build, then measure
    python -m benchmarks.tail_latency --index DIR --code BEFORE_TREE --code .      # before/after, same index
    git archive COMMIT qcy_match | tar -x -C BEFORE_TREE                          # a tree to compare against

A realistic index (:mod:`benchmarks.realistic`, seeded, default configuration) is built once and saved. Each code
tree named by ``--code`` (the repository by default; e.g. an export of the commit before a change as well) is then
measured in a process of its own, the trees taking turns for ``--rounds`` rounds, all against the same saved index:
``--repeat`` single needs (explanations on, unfiltered) alone, then the same number while one CPU-bound process per
core runs beside them (``python -c 'while 1: pass'``). OMP_NUM_THREADS is left as found.

For each query the child records wall time per stage (validation, tokenising, encoding, dense search and scoring,
sparse candidates, fusion, explanations, confidence), the time spent in garbage collection, and the CPU time of the
calling thread against the whole process: CPU burnt by other threads (BLAS/OpenMP workers waking and spinning)
is what a busy machine turns into a tail.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .datasets import REPO

STAGES = ("validate", "tokenise", "encode", "dense_search", "dense_score", "sparse", "fusion", "explain",
          "confidence")


def build(n: int, path: Path, seed: int) -> None:
    from qcy_match import EngineConfig, MatchEngine

    from . import realistic

    t0 = time.perf_counter()
    MatchEngine(EngineConfig()).index(realistic.achievements(n, seed)).save(path)
    print(f"built {n} records in {time.perf_counter() - t0:.0f} s: {path}", flush=True)


# ---- the child: one code tree, one saved index ----------------------------------------------------------------

class StageClock:
    """Wall time per stage of the current query, by wrapping the engine's per-query functions."""

    def __init__(self) -> None:
        self.now: dict[str, float] = defaultdict(float)

    def wrap(self, owner: Any, attr: str, stage: str) -> None:
        orig = getattr(owner, attr)

        @functools.wraps(orig)
        def timed(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return orig(*a, **kw)
            finally:
                self.now[stage] += time.perf_counter() - t0

        setattr(owner, attr, timed)

    def take(self) -> dict[str, float]:
        out, self.now = dict(self.now), defaultdict(float)
        return out


def instrument(engine: Any, clock: StageClock) -> None:
    from qcy_match.match import confidence, pool, query
    from qcy_match.match import engine as engine_mod

    st = engine._snap
    clock.wrap(engine, "_queries", "validate")
    clock.wrap(engine.tokenizer_, "tokenize", "tokenise")
    clock.wrap(engine.encoder_, "encode", "encode")
    clock.wrap(st.dense, "search", "dense_search")
    clock.wrap(st.dense, "score", "dense_score")
    clock.wrap(query, "sparse_top", "sparse")
    clock.wrap(pool, "fused", "fusion")
    clock.wrap(engine_mod, "explain", "explain")
    clock.wrap(confidence, "of_matches", "confidence")


@contextmanager
def gc_clock() -> Iterator[list[float]]:
    """Seconds of each garbage collection while the block runs (appended as they end)."""
    spans: list[float] = []
    start = [0.0]

    def cb(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            start[0] = time.perf_counter()
        else:
            spans.append(time.perf_counter() - start[0])

    gc.callbacks.append(cb)
    try:
        yield spans
    finally:
        gc.callbacks.remove(cb)


def hogs(count: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def measure(engine: Any, needs: list[dict[Any, Any]], repeat: int, clock: StageClock, offset: int
            ) -> list[dict[str, Any]]:
    rows = []
    for i in range(repeat + 10):
        q = needs[(offset + i) % len(needs)]
        clock.take()
        with gc_clock() as spans:
            c0, p0, t0 = time.thread_time(), time.process_time(), time.perf_counter()
            engine.match([q], k=10, explain_matches=True)
            t1, p1, c1 = time.perf_counter(), time.process_time(), time.thread_time()
        if i >= 10:  # the first ten warm up
            rows.append({"ms": (t1 - t0) * 1e3, "cpu_ms": (c1 - c0) * 1e3, "other_threads_cpu_ms":
                         max(0.0, (p1 - p0) - (c1 - c0)) * 1e3, "gc_ms": sum(spans) * 1e3,
                         "stages_ms": {k: v * 1e3 for k, v in clock.take().items()}})
    return rows


def child(index: Path, repeat: int, seed: int, n_needs: int) -> dict[str, Any]:
    from qcy_match import MatchEngine

    from . import realistic

    engine = MatchEngine.load(index)
    needs = realistic.needs(n_needs, len(engine), seed).to_dict("records")
    clock = StageClock()
    instrument(engine, clock)
    cores = os.cpu_count() or 1
    out: dict[str, Any] = {"code": str(Path(sys.modules["qcy_match"].__file__ or "").parent.parent),
                           "records": len(engine), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                           "hogs": cores, "load_avg_start": os.getloadavg()}
    out["alone"] = measure(engine, needs, repeat, clock, 0)
    procs = hogs(cores)
    try:
        time.sleep(0.5)
        out["load_avg_hog_start"] = os.getloadavg()
        out["beside_hog"] = measure(engine, needs, repeat, clock, repeat)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    out["load_avg_end"] = os.getloadavg()
    return out


# ---- the parent: code trees taking turns, then a summary ------------------------------------------------------

def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ms = np.asarray([r["ms"] for r in rows])
    p50, p95, p99 = (float(np.percentile(ms, q)) for q in (50, 95, 99))
    slow = [r for r in rows if r["ms"] >= p95]
    fast = [r for r in rows if r["ms"] <= p50]

    def mean_stages(part: list[dict[str, Any]]) -> dict[str, float]:
        keys = sorted({k for r in part for k in r["stages_ms"]})
        d = {k: float(np.mean([r["stages_ms"].get(k, 0.0) for r in part])) for k in keys}
        d["gc"] = float(np.mean([r["gc_ms"] for r in part]))
        d["other_threads_cpu"] = float(np.mean([r["other_threads_cpu_ms"] for r in part]))
        d["rest"] = float(np.mean([r["ms"] - sum(r["stages_ms"].values()) for r in part]))
        return d

    return {"p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "p99_over_p50": p99 / p50, "n": len(ms),
            "other_threads_cpu_ms_mean": float(np.mean([r["other_threads_cpu_ms"] for r in rows])),
            "gc_ms_total": float(sum(r["gc_ms"] for r in rows)),
            "slowest_5pct_stages_ms": mean_stages(slow), "fastest_half_stages_ms": mean_stages(fast)}


def run_child(code: Path, index: Path, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        out = Path(tmp.name)
    # python -m puts the working directory first on sys.path: qcy_match comes from the code tree, the benchmarks
    # from this repository (a tree holding only qcy_match/ works).
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "benchmarks.tail_latency", "--child", str(index), "--repeat", str(args.repeat),
           "--seed", str(args.seed), "--needs", str(args.needs), "--json", str(out)]
    rc = subprocess.run(cmd, cwd=code.resolve(), env=env).returncode
    if rc != 0:
        return {"error": f"exit status {rc}"}
    result: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    return result


def markdown(rep: dict[str, Any]) -> str:
    lines = ["# Single-need tail latency beside CPU-bound processes", "",
             f"{rep['records']:,} realistic records, default configuration, explanations on, unfiltered; "
             f"{rep['repeat']} single needs per measurement, one CPU hog per core ({rep['cores']}) beside; "
             f"OMP_NUM_THREADS={rep['OMP_NUM_THREADS']}. Code trees take turns ({rep['rounds']} rounds).", "",
             "| code | round | alone p50 / p95 / p99 ms | beside hogs p50 / p95 / p99 ms | p99 ÷ p50 beside hogs | "
             "other threads' CPU ms per query (alone; hogs) | load avg (start; hogs) |", "|" + "---|" * 7]
    for r in rep["runs"]:
        if "error" in r:
            lines.append(f"| {r['label']} | {r['round']} | error: {r['error']} |" + " |" * 4)
            continue
        a, h = r["summary"]["alone"], r["summary"]["beside_hog"]
        lines.append(f"| {r['label']} | {r['round']} | {a['p50_ms']:.1f} / {a['p95_ms']:.1f} / {a['p99_ms']:.1f} | "
                     f"{h['p50_ms']:.1f} / {h['p95_ms']:.1f} / {h['p99_ms']:.1f} | {h['p99_over_p50']:.2f}× | "
                     f"{a['other_threads_cpu_ms_mean']:.2f}; {h['other_threads_cpu_ms_mean']:.2f} | "
                     f"{r['load_avg_start'][0]:.2f}; {r['load_avg_hog_start'][0]:.2f} |")
    lines += ["", "Mean ms per stage beside hogs, slowest 5 % of queries vs fastest half:", ""]
    for r in rep["runs"]:
        if "error" in r:
            continue
        h = r["summary"]["beside_hog"]
        slow, fast = h["slowest_5pct_stages_ms"], h["fastest_half_stages_ms"]
        lines.append(f"- {r['label']} round {r['round']}: " + ", ".join(
            f"{k} {slow[k]:.1f} ({fast.get(k, 0.0):.1f})" for k in slow))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40_000, help="records to build when no --index is given")
    ap.add_argument("--index", type=Path, default=None, help="a saved index to measure (built if missing)")
    ap.add_argument("--code", type=Path, action="append", default=None,
                    help="code tree(s) to measure, taking turns (default: this repository)")
    ap.add_argument("--label", action="append", default=None, help="a label per --code")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=300)
    ap.add_argument("--needs", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--stem", default="tail_latency")
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        assert args.json is not None
        args.json.write_text(json.dumps(child(args.child, args.repeat, args.seed, args.needs), default=float))
        return 0
    index = args.index or Path(tempfile.mkdtemp()) / "idx"
    if not (index / "manifest.json").exists():
        build(args.n, index, args.seed)
    codes = args.code or [REPO]
    labels = args.label or [str(c) for c in codes]
    runs = []
    for rnd in range(args.rounds):
        for code, label in zip(codes, labels, strict=True):
            r = run_child(code, index, args)
            if "error" not in r:
                r = {**{k: v for k, v in r.items() if k not in ("alone", "beside_hog")},
                     "summary": {p: summarise(r[p]) for p in ("alone", "beside_hog")}}
            runs.append({"label": label, "round": rnd + 1, **r})
            print(json.dumps({"label": label, "round": rnd + 1, **{p: {k: round(v, 2) for k, v in s.items()
                                                                       if isinstance(v, float)}
                                                                   for p, s in r.get("summary", {}).items()}}),
                  flush=True)
    ok = [r for r in runs if "error" not in r]
    rep = {"records": ok[0]["records"] if ok else 0, "repeat": args.repeat, "cores": os.cpu_count(),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "rounds": args.rounds, "runs": runs}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.stem}.json").write_text(json.dumps(rep, indent=1, default=float))
    (args.out / f"{args.stem}.md").write_text(markdown(rep))
    print(markdown(rep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
