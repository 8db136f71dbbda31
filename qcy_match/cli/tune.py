"""``tune``: learn an index's fusion weight, candidate depth and confidence calibration from judged pairs."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .common import CliError, _add_input_options, _check_paths, _finish_rejects, _load, _rejects_path


def _add_tune_parser(sub: Any) -> None:
    p = sub.add_parser("tune", help="fit an index's fusion weight, candidate depth and confidence calibration on "
                       "judged need–achievement pairs (cross-validated); saved only where it improves")
    p.add_argument("--index", type=Path, required=True, help="index directory of achievements to tune")
    p.add_argument("--judgments", type=Path, required=True, help="judged pairs (CSV/TSV/XLSX/JSONL): need_id, "
                   "achievement_id, label (a grade 0–3, or accepted/rejected)")
    p.add_argument("--needs", type=Path, required=True, help="the judged needs' records (their id is need_id)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds, by need (default 5)")
    p.add_argument("--accept-grade", type=int, default=1, help="the least grade counted as accepted (default 1)")
    p.add_argument("--weights", metavar="W1,W2", help="dense weights to try (default 0,0.2,0.3,0.4,0.5,0.6,0.8; "
                   "the index's current setting is always tried)")
    p.add_argument("--depths", metavar="N1,N2", help="candidate depths to try (default 50,100,200)")
    p.add_argument("--report", type=Path, help="also write the report as JSON")
    p.add_argument("--dry-run", action="store_true", help="report only; never change the index")
    _add_input_options(p)


def cmd_tune(args: argparse.Namespace) -> None:
    """Tune an index on judged pairs and save what improves on held-out needs (unless --dry-run)."""
    from .. import persistence
    from ..match import tune
    from ..match.engine import MatchEngine

    if args.folds < 2:
        raise CliError("--folds must be at least 2")
    if not 0 <= args.accept_grade <= 3:
        raise CliError("--accept-grade must be 0–3")
    try:
        weights = [float(w) for w in args.weights.split(",")] if args.weights else list(tune.WEIGHTS)
        depths = [int(d) for d in args.depths.split(",")] if args.depths else list(tune.DEPTHS)
    except ValueError as exc:
        raise CliError(f"--weights and --depths are comma-separated numbers ({exc})") from exc
    if not all(0 <= w <= 1 for w in weights) or not all(d >= 1 for d in depths):
        raise CliError("--weights must lie in 0..1 and --depths be at least 1")
    rejects_at = _rejects_path(args, args.judgments)
    _check_paths([rejects_at, args.report], [args.judgments, args.needs], [args.index])
    t0 = time.time()
    rejects: list[Any] = []
    judgments, bad = tune.read_judgments(args.judgments, args.sheet)
    rejects.extend(bad)
    needs = _load(args.needs, rejects, sheet=args.sheet)
    version = persistence.version(args.index) if (args.index / persistence.LAYOUT.manifest).is_file() else None
    engine = MatchEngine.load(args.index)
    try:
        report, unknown = tune.tune(engine, needs, judgments, folds=args.folds, weights=weights, depths=depths,
                                    accept_grade=args.accept_grade,
                                    source=str(args.judgments))
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    rejects.extend(unknown)
    summary = _finish_rejects(args, rejects, args.judgments)
    if not args.dry_run:
        tune.save_tuned(args.index, report, version)
    if args.report:
        args.report.write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
    print(report.text())
    print(f"tuned {args.index} on {args.judgments} ({time.time() - t0:.1f} s"
          f"{', dry run' if args.dry_run else ''}); {summary}", file=sys.stderr)
