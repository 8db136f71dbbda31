"""Command line: a thin shell over the public API. Imports are lazy so ``--help`` answers at once."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path

from .bench import _add_bench_parser, cmd_bench
from .classify import _add_classify_missing_options, _add_classify_parser, cmd_classify
from .common import (
    EXIT_BUG,
    EXIT_DATA,
    EXIT_INTERRUPTED,
    EXIT_OUTPUT,
    EXIT_USAGE,
    CliError,
    _add_engine_options,
    _add_input_options,
)
from .matching import _add_stream_options, _add_update_options, cmd_demo, cmd_index, cmd_match
from .milvus import _add_milvus_parser, cmd_export_milvus
from .report import _add_report_parser, cmd_report
from .serve import _add_serve_parsers, cmd_serve, cmd_token
from .solvers import _add_solvers_parsers, cmd_consortium, cmd_solvers
from .spark import _add_spark_index_parser, _add_spark_parser, cmd_spark_index, cmd_spark_match
from .tune import _add_tune_parser, cmd_tune


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    ap = argparse.ArgumentParser(prog="qcy-match", description="Match technology achievements (科技成果) with "
                                 "enterprise technology needs (企业技术需求), offline.")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="build an index directory over achievements (or needs), or update one")
    side = p.add_mutually_exclusive_group()
    side.add_argument("--achievements", type=Path, help="achievements file (CSV/TSV, XLSX, JSONL, Parquet)")
    side.add_argument("--needs", type=Path, help="index needs instead (for achievement → needs matching)")
    p.add_argument("--out", type=Path, help="index directory to write")
    _add_update_options(p)
    _add_engine_options(p)
    _add_input_options(p)
    _add_classify_missing_options(p)

    p = sub.add_parser("match", help="match needs to achievements (or the reverse) and write a table")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--index", type=Path, help="index directory made by 'qcy-match index'")
    src.add_argument("--achievements", type=Path, help="achievements file, indexed on the fly")
    p.add_argument("--needs", type=Path, required=True, help="needs file")
    p.add_argument("--top-k", type=int, default=10, help="matches per query (default 10)")
    p.add_argument("--out", type=Path, required=True, help="output table; format by extension: .csv .jsonl .xlsx")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=V1,V2",
                   help="industry=39,C27 | chain=集成电路 | tag=strategic | region=关中 | maturity=中试 | "
                   "transfer_mode=许可 (repeatable; AND across filters, OR within one)")
    p.add_argument("--min-confidence", type=float, metavar="X", help="leave out matches whose confidence (the "
                   "calibrated chance a broker accepts them, 0–1) is below X")
    p.add_argument("--direction", choices=["needs", "achievements"], default="needs",
                   help="needs: each need gets achievements (default); achievements: each achievement gets needs")
    p.add_argument("--device", choices=["cuda", "cpu"], default=None,
                   help="score the batch with torch on this device ([gpu] extra): cuda for a GPU (an error where torch "
                   "sees none), cpu for torch's CPU backend; default: the numpy/FAISS path")
    _add_stream_options(p)
    _add_engine_options(p)
    _add_input_options(p)

    p = sub.add_parser("demo", help="match the shipped demo corpus and print the top matches with reasons")
    p.add_argument("--corpus", type=Path, default=Path("corpora"), help="folder with achievements.jsonl, needs.jsonl")
    p.add_argument("--out", type=Path, default=Path("out/demo_matches.csv"), help="full result table")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--show", type=int, default=6, help="needs to print")
    _add_engine_options(p)
    _add_input_options(p, sheet=False)
    _add_classify_parser(sub)
    _add_report_parser(sub)
    _add_tune_parser(sub)
    _add_solvers_parsers(sub)
    _add_bench_parser(sub)
    _add_serve_parsers(sub)
    _add_spark_parser(sub)
    _add_spark_index_parser(sub)
    _add_milvus_parser(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qcy-match`` console script; returns the exit status (see :func:`exit_status`)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        # Everything after 'bench' belongs to the suite (argparse would claim its --help).
        args = argparse.Namespace(command="bench", bench_args=argv[1:], verbose=False)
    else:
        args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    commands = {"index": cmd_index, "match": cmd_match, "demo": cmd_demo, "classify": cmd_classify,
                "report": cmd_report, "bench": cmd_bench, "serve": cmd_serve, "token": cmd_token,
                "solvers": cmd_solvers, "consortium": cmd_consortium, "spark-match": cmd_spark_match,
                "spark-index": cmd_spark_index, "export-milvus": cmd_export_milvus, "tune": cmd_tune}
    try:
        commands[args.command](args)
    except KeyboardInterrupt as exc:
        print(f"qcy-match: interrupted{_notes(exc)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # every error ends as one line; an unexpected one offers its traceback
        status = exit_status(exc)
        bug = status == EXIT_BUG
        if bug and args.verbose:
            traceback.print_exc()
        what = f"{type(exc).__name__}: " if bug else ""
        hint = " (run with -v for the traceback)" if bug and not args.verbose else ""
        print(f"qcy-match: error: {what}{_message(exc)}{_notes(exc)}{hint}", file=sys.stderr)
        return status
    return 0


def exit_status(exc: BaseException) -> int:
    """The exit status for an error, decided here alone: 2 the arguments, 3 an input file or the index, 4 an output
    (or another file-system error), 1 anything unexpected (a bug; ``-v`` shows its traceback).
    """
    from ..errors import IndexFormatError, InputError, OutputError, QcyError, RejectedRowsError

    if isinstance(exc, OutputError):
        return EXIT_OUTPUT
    if isinstance(exc, InputError | IndexFormatError | RejectedRowsError):
        return EXIT_DATA
    if isinstance(exc, CliError | QcyError):  # usage, filters, unknown codes or chains, a missing extra
        return EXIT_USAGE
    if isinstance(exc, OSError):  # inputs are checked before a job starts, so this is mostly a write that failed
        return EXIT_OUTPUT
    return EXIT_BUG


def _message(exc: BaseException) -> str:
    """An error as one line: ``<file>: <problem>`` for a file-system error, the error's own words otherwise."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return " ".join(str(exc).split("\n"))


def _notes(exc: BaseException) -> str:
    """The notes the library added to an error (e.g. that a checkpoint is kept), on the same line."""
    return "".join(f"; {note}" for note in getattr(exc, "__notes__", ()))


if __name__ == "__main__":
    sys.exit(main())
