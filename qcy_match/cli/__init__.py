"""Command line: a thin shell over the public API. Imports are lazy so ``--help`` answers at once."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .bench import _add_bench_parser, cmd_bench
from .classify import _add_classify_missing_options, _add_classify_parser, cmd_classify
from .common import EXIT_DATA, EXIT_USAGE, CliError, _add_engine_options, _add_input_options
from .matching import _add_stream_options, _add_update_options, cmd_demo, cmd_index, cmd_match
from .report import _add_report_parser, cmd_report
from .serve import _add_serve_parsers, cmd_serve, cmd_token


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
    p.add_argument("--direction", choices=["needs", "achievements"], default="needs",
                   help="needs: each need gets achievements (default); achievements: each achievement gets needs")
    _add_stream_options(p)
    _add_engine_options(p)
    _add_input_options(p)

    p = sub.add_parser("demo", help="match the shipped demo corpus and print the top matches with reasons")
    p.add_argument("--corpus", type=Path, default=Path("corpora"), help="folder with achievements.jsonl, needs.jsonl")
    p.add_argument("--out", type=Path, default=Path("out/demo_matches.csv"), help="full result table")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--show", type=int, default=6, help="needs to print")
    _add_engine_options(p)
    _add_input_options(p)
    _add_classify_parser(sub)
    _add_report_parser(sub)
    _add_bench_parser(sub)
    _add_serve_parsers(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qcy-match`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        # Everything after 'bench' belongs to the suite (argparse would claim its --help).
        args = argparse.Namespace(command="bench", bench_args=argv[1:], verbose=False)
    else:
        args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from ..errors import IndexFormatError, InputError, QcyError

    try:
        commands = {"index": cmd_index, "match": cmd_match, "demo": cmd_demo, "classify": cmd_classify,
                    "report": cmd_report, "bench": cmd_bench, "serve": cmd_serve, "token": cmd_token}
        commands[args.command](args)
    except (CliError, QcyError, FileNotFoundError) as exc:
        print(f"qcy-match: error: {exc}", file=sys.stderr)
        return EXIT_DATA if isinstance(exc, InputError | IndexFormatError) else EXIT_USAGE
    except KeyboardInterrupt:
        print("qcy-match: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
