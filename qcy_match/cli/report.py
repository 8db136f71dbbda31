"""``report``: demand analytics as an HTML page with plots plus CSV/XLSX tables."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from .common import (
    CliError,
    _add_engine_options,
    _add_input_options,
    _check_paths,
    _config,
    _finish_rejects,
    _load,
    _progress,
    _rejects_path,
)


def _add_report_parser(sub: Any) -> None:
    p = sub.add_parser("report", help="demand analytics: topics, supply–demand gaps, unused supply, roadshow "
                       "shortlist, as an HTML page with plots plus CSV/XLSX tables")
    p.add_argument("--achievements", type=Path, required=True, help="achievements file")
    p.add_argument("--needs", type=Path, required=True, help="needs file")
    p.add_argument("--out", type=Path, required=True, help="report directory (report.html, tables/, tables.xlsx)")
    p.add_argument("--top-k", type=int, default=10, help="matches per need that count as 'appearing' (default 10)")
    p.add_argument("--slots", type=int, default=5, help="roadshow presentation slots (default 5)")
    p.add_argument("--chain", help="roadshow scope: chain name, e.g. 数控机床")
    p.add_argument("--industry", help="roadshow scope: GB/T 4754 code at any level, e.g. C34")
    p.add_argument("--region", help="roadshow scope: 关中/陕北/陕南, a city or a district")
    p.add_argument("--topics", type=int, help="number of topics (default: chosen by silhouette)")
    p.add_argument("--seed", type=int, default=0, help="seed for clustering and threshold sampling")
    p.add_argument("--no-plots", action="store_true", help="tables only (no matplotlib needed)")
    _add_engine_options(p)
    _add_input_options(p)


def cmd_report(args: argparse.Namespace) -> None:
    """Build the demand-analytics report directory."""
    from ..analytics import demand as analytics
    from ..analytics import report as rp
    from ..errors import FilterError
    from ..match.engine import MatchEngine
    from ..output.paths import output_dir

    if args.top_k < 1 or args.slots < 1:
        raise CliError("--top-k and --slots must be at least 1")
    for key in ("chain", "industry", "region"):  # check the roadshow scope before the slow part
        try:
            analytics.scope_filters(**{key: getattr(args, key)})
        except FilterError as exc:
            raise CliError(f"--{key}: {exc.__cause__ or exc}") from exc
    output_dir(args.out)
    config = _config(args)
    _check_paths([*(args.out / name for name in rp.REPORT_FILES), _rejects_path(args, args.out / "input.csv")],
                 [args.achievements, args.needs], list(map(Path, config.user_dicts)),
                 dirs=[args.out / name for name in rp.REPORT_DIRS])
    t0 = time.time()
    rejects: list[Any] = []
    achievements = _load(args.achievements, rejects, sheet=args.sheet)
    needs = _load(args.needs, rejects, sheet=args.sheet)
    args.out.mkdir(parents=True, exist_ok=True)
    report = _finish_rejects(args, rejects, args.out / "input.csv")
    engine = MatchEngine(config).index(achievements, show_progress=_progress(args))
    analysis = analytics.analyse(achievements, needs, engine=engine, k=args.top_k, seed=args.seed)
    try:
        result = rp.build_tables(analysis, slots=args.slots, chain=args.chain, industry=args.industry,
                                 region=args.region, seed=args.seed, n_topics=args.topics)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if not args.no_plots:
        rp.add_plots(result, analysis)
    page = rp.write_report(result, args.out)
    print(f"report on {len(needs)} needs × {len(achievements)} achievements → {page} ({time.time() - t0:.1f} s); "
          f"{result.notes['threshold']}; {report}", file=sys.stderr)
