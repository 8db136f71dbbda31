"""``spark-match``: ``match`` as a Spark job, written as a directory (also run through ``spark-submit``)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from .common import CliError, _add_engine_options, _check_paths, _config

OUTPUTS = ("matches", "rejected.csv")  # what spark-match writes under --out


def _add_spark_parser(sub: Any) -> None:
    p = sub.add_parser("spark-match", help="match needs against an index as a Spark job ([spark] extra, Java 17)")
    p.add_argument("--index", type=Path, required=True, help="index directory of achievements, on storage every "
                   "executor reads")
    p.add_argument("--needs", type=Path, required=True, help="needs file (CSV/TSV, XLSX, JSONL, Parquet)")
    p.add_argument("--out", type=Path, required=True, help="output directory: matches/ (part files) and rejected.csv")
    p.add_argument("--top-k", type=int, default=10, help="matches per query (default 10)")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=V1,V2", help="as for 'match' (repeatable)")
    p.add_argument("--direction", choices=["needs", "achievements"], default="needs",
                   help="needs: each need gets achievements (default); achievements: each achievement gets needs")
    p.add_argument("--master", help="Spark master, e.g. local[2] (default: spark-submit's, else local[*])")
    p.add_argument("--partitions", type=int, help="tasks of the matching stage (default: twice the cores)")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv", help="format of the part files")
    p.add_argument("--sheet", help="worksheet of an .xlsx needs file")
    p.add_argument("--strict", action="store_true", help="fail if any input row is rejected (after the report)")
    p.add_argument("-v", "--verbose", action="store_true", help="log what the library does")


def _add_spark_index_parser(sub: Any) -> None:
    p = sub.add_parser("spark-index", help="build a sharded index as a Spark job ([spark] extra, Java 17)")
    side = p.add_mutually_exclusive_group(required=True)
    side.add_argument("--records", "--achievements", dest="records", type=Path,
                      help="achievements file (CSV/TSV, XLSX, JSONL, Parquet)")
    side.add_argument("--needs", type=Path, help="index needs instead")
    p.add_argument("--out", type=Path, required=True, help="sharded index directory to write (storage every "
                   "executor writes and reads)")
    p.add_argument("--shards", type=int, required=True, metavar="N", help="shard count")
    p.add_argument("--master", help="Spark master, e.g. local[2] (default: spark-submit's, else local[*])")
    p.add_argument("--fit-sample", type=int, default=100_000, metavar="N",
                   help="records a corpus-fitted encoder (lsa) is fitted on, a seeded sample (default 100000)")
    p.add_argument("--sheet", help="worksheet of an .xlsx input")
    p.add_argument("--rejects", type=Path, help="rejected-rows report (default: beside --out)")
    p.add_argument("--strict", action="store_true", help="fail if any input row is rejected")
    _add_engine_options(p)
    p.add_argument("-v", "--verbose", action="store_true", help="log what the library does")


def cmd_spark_index(args: argparse.Namespace) -> None:
    """Build a sharded index on Spark: encoder fitted on the driver, one task per shard, manifest on the driver."""
    from ..output.rejects import report_rejections
    from ..spark import job, shards

    if args.shards < 1:
        raise CliError("--shards must be at least 1")
    if args.fit_sample < 1:
        raise CliError("--fit-sample must be at least 1")
    path = args.records or args.needs
    config = _config(args)
    rejects = args.rejects or args.out.with_name(args.out.name + ".rejected.csv")
    _check_paths([rejects], [path], [Path(p) for p in config.user_dicts], dirs=[args.out])
    job.require_spark()
    t0 = time.time()
    spark = job.session(args.master or _default_master())
    records = job.read_needs(spark, path, args.sheet)
    valid, rejected, checked = job.validated(records)
    found = records.rejected + sorted((job.rejection(r) for r in rejected.collect()), key=lambda r: r.row)
    summary = report_rejections(found, rejects, strict=args.strict)
    side = "achievements" if args.records else "needs"
    try:
        out = shards.build(valid, records.columns, args.out, args.shards, config, side, args.fit_sample)
    finally:
        checked.unpersist()
    print(f"spark-index: {side} from {path} → {out} ({args.shards} shards, {time.time() - t0:.1f} s); {summary}",
          file=sys.stderr)


def cmd_spark_match(args: argparse.Namespace) -> None:
    """Run the Spark job and write ``--out/matches/`` and ``--out/rejected.csv``."""
    from ..output.rejects import report_rejections
    from ..spark import job

    if args.top_k < 1:
        raise CliError("--top-k must be at least 1")
    if args.partitions is not None and args.partitions < 1:
        raise CliError("--partitions must be at least 1")
    _check_paths([], [args.needs], [args.index], dirs=[args.out])
    if args.out.exists() and any(args.out.iterdir()):
        raise CliError(f"{args.out}: the output directory exists and is not empty; give a new one")
    job.require_spark()
    t0 = time.time()
    spark = job.session(args.master or _default_master())
    needs = job.read_needs(spark, args.needs, args.sheet)
    res = job.run(needs, args.index, args.top_k, args.filter, args.direction,
                  work_dir=args.out / "_work" if args.direction == "achievements" else None,
                  partitions=args.partitions)
    report = args.out / OUTPUTS[1]
    if args.strict:  # the report first, so --strict fails before any match is written
        report_rejections(res.rejections(), report, strict=True)
    if args.format == "csv":
        job.for_csv(res.matches).write.mode("errorifexists").option("header", True).csv(str(args.out / OUTPUTS[0]))
    else:
        res.matches.write.mode("errorifexists").parquet(str(args.out / OUTPUTS[0]))
    summary = report_rejections(res.rejections(), report)
    res.release()
    shutil.rmtree(args.out / "_work", ignore_errors=True)  # the needs index of direction achievements
    print(f"spark-match: {args.direction} against {args.index} → {args.out / OUTPUTS[0]} "
          f"({time.time() - t0:.1f} s); {summary}", file=sys.stderr)


def _default_master() -> str | None:
    """None under spark-submit (its JVM is running and sets the master), else every core of this machine."""
    return None if os.environ.get("PYSPARK_GATEWAY_PORT") else "local[*]"
