"""``bench``: runs the benchmark suite of a source checkout."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from .common import CliError


def _add_bench_parser(sub: Any) -> None:
    p = sub.add_parser("bench", help="run the benchmark suite (from a source checkout; needs the [bench] extra)",
                       add_help=False)
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="options of benchmarks/run.py (--full, --out DIR, "
                   "--data DIR, …; --help lists them)")


def cmd_bench(args: argparse.Namespace) -> None:
    """Run the suite in the checkout's benchmarks/ folder (it is not part of the installed package)."""
    import importlib

    logging.getLogger().handlers.clear()  # the suite sets up its own logging
    root = Path(__file__).resolve().parents[2]
    if not (root / "benchmarks" / "run.py").is_file():
        raise CliError(f"the benchmark suite lives in a source checkout's benchmarks/ folder, not found beside "
                       f"{root / 'qcy_match'}; clone the repository and run 'make bench' or 'qcy-match bench' there")
    sys.path.insert(0, str(root))
    run = importlib.import_module("benchmarks.run")
    rc = run.main(list(args.bench_args))
    if rc:
        raise CliError(f"benchmark suite failed (exit status {rc})")
