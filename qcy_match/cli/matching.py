"""``index`` (build or update), ``match`` (in memory or streamed and resumable) and ``demo``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from .classify import _classify_missing
from .common import CliError, _check_paths, _config, _finish_rejects, _load, _progress, _rejects_path


def cmd_index(args: argparse.Namespace) -> None:
    """Build and save an index (sharded with --shards N)."""
    from ..match.engine import MatchEngine
    from ..match.sharded import ShardedEngine

    if args.shards is not None and args.shards < 1:
        raise CliError("--shards must be at least 1")

    if args.update or args.delete or args.index:
        return cmd_index_update(args)
    if not (args.achievements or args.needs) or not args.out:
        raise CliError("give --achievements FILE (or --needs FILE) and --out DIR to build an index, or --index DIR "
                       "with --update FILE / --delete IDS to change one")
    rejects: list[Any] = []
    path = args.achievements or args.needs
    side = "achievements" if args.achievements else "needs"
    config = _config(args)
    _check_paths([_index_rejects(args, args.out)], [path], [*map(Path, config.user_dicts), args.classifier],
                 dirs=[args.out])
    t0 = time.time()
    records = _load(path, rejects, sheet=args.sheet)
    if args.classify_missing:
        records = _classify_missing(args, records)
    report = _finish_rejects(args, rejects, args.out.with_name(args.out.name + ".index"))
    if args.shards is not None:
        engine: MatchEngine = ShardedEngine(config, shards=args.shards).index(records, side=side,
                                                                            show_progress=_progress(args))
        kind = f"{args.shards} shards"
    else:
        engine = MatchEngine(config).index(records, side=side, show_progress=_progress(args))
        kind = engine.dense_.kind_
    engine.save(args.out)
    print(f"indexed {len(engine)} {side} from {path} → {args.out} ({kind}, {time.time() - t0:.1f} s); {report}",
          file=sys.stderr)


def cmd_match(args: argparse.Namespace) -> None:
    """Match a needs file against an index or an achievements file and write the table (see ``match_file``)."""
    from ..match.jobs import match_file

    if args.top_k < 1:
        raise CliError("--top-k must be at least 1")
    if args.chunk_rows < 1:
        raise CliError("--chunk-rows must be at least 1")
    if args.min_confidence is not None and not 0 <= args.min_confidence <= 1:
        raise CliError("--min-confidence must be between 0 and 1")
    res = match_file(args.needs, args.out, index=args.index, achievements=args.achievements,
                     direction=args.direction, k=args.top_k, filters=args.filter,
                     config=_config(args) if args.achievements else None, chunk_rows=args.chunk_rows,
                     resume=args.resume, strict=args.strict, rejects=args.rejects, sheet=args.sheet,
                     show_progress=_progress(args), device=args.device, min_confidence=args.min_confidence)
    resumed = f", resumed after {res.skipped_chunks} chunks" if args.resume else ""
    print(f"matched {res.queries} {res.direction} against {res.corpus} {res.searched}: {res.rows} rows → {res.out} "
          f"({res.seconds:.1f} s{resumed}); {res.report}", file=sys.stderr)


# ---- live updates (issue 6) ------------------------------------------------------------------------------------
def _add_update_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("live updates (change an existing index without a rebuild)")
    g.add_argument("--index", type=Path, help="existing index directory to update (written back unless --out)")
    g.add_argument("--update", type=Path, metavar="FILE",
                   help="records to add; a record whose id is indexed replaces it (upsert)")
    g.add_argument("--delete", metavar="IDS", help="ids to delete: 'A1,A2' or @FILE (one id per line)")
    p.add_argument("--shards", type=int, metavar="N",
                   help="write a sharded index of N shards (records split by a hash of their id; searched with "
                   "corpus-wide statistics, results as unsharded). With --index: re-shard it")


def _delete_file(spec: str | None) -> Path | None:
    """The file of ``--delete @FILE``, else None."""
    return Path(spec[1:]) if spec and spec.startswith("@") else None


def _delete_ids(spec: str) -> list[str]:
    """The ids ``--delete`` names, normalised as record ids are (full-width digits, invisible characters)."""
    from ..ingest.records import normalize_id

    path = _delete_file(spec)
    if path is not None:
        if not path.is_file():
            raise CliError(f"--delete {spec}: no such file")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"--delete {spec}: cannot be read as UTF-8 text ({exc})") from exc
        parts = text.splitlines()
    else:
        parts = spec.split(",")
    return [i for i in map(normalize_id, parts) if i]


def _index_rejects(args: argparse.Namespace, out: Path) -> Path:
    """Where ``index`` writes its rejected-rows report: ``--rejects``, else ``<out>.rejected.csv`` beside it."""
    return _rejects_path(args, out.with_name(out.name + ".index"))


def cmd_index_update(args: argparse.Namespace) -> None:
    """Upsert and delete records of a saved index, then save it atomically.

    The --update file and the ids are read first; then the index's writer lock is held from loading it to saving
    it (the rejected-rows report and --strict in between), so two updates of one index, from two processes, are
    applied one after the other instead of the second overwriting the first.
    """
    from .. import persistence
    from ..match.engine import MatchEngine

    if not args.index:
        raise CliError("--update and --delete need --index DIR (the index to change)")
    if not (args.update or args.delete or args.shards):
        raise CliError("--index DIR needs --update FILE and/or --delete IDS (or --shards N to re-shard it)")
    if args.achievements or args.needs:
        raise CliError("--update/--delete change an existing index; do not give --achievements/--needs")
    out = args.out or args.index
    in_place = Path(os.path.realpath(out)) == Path(os.path.realpath(args.index))
    _check_paths([_index_rejects(args, out)], [args.update], [_delete_file(args.delete), args.index],
                 dirs=[None if in_place else out])
    t0 = time.time()
    rejects: list[Any] = []
    records = _load(args.update, rejects, sheet=args.sheet) if args.update else None
    ids = _delete_ids(args.delete) if args.delete else []
    notes = []
    with persistence.locked(out):
        engine = MatchEngine.load(args.index)
        if args.delete:
            res = engine.delete(ids)
            notes.append(f"deleted {len(res.deleted)}")
            if res.missing:
                notes.append(f"{len(res.missing)} ids to delete were not indexed: {', '.join(res.missing[:5])}")
        if records is not None:
            res = engine.upsert(records, show_progress=_progress(args))
            rejects.extend(res.rejected)
            notes.append(f"added {len(res.added)}, replaced {len(res.replaced)}")
        report = _finish_rejects(args, rejects, out.with_name(out.name + ".index"))
        if args.shards:
            notes.append(f"{args.shards} shards")
        engine.save(out, shards=args.shards)
    print(f"updated {args.index} → {out}: {'; '.join(notes)}; {len(engine)} records ({time.time() - t0:.1f} s); "
          f"{report}", file=sys.stderr)


# ---- streamed, resumable matching (issue 6) --------------------------------------------------------------------
def _add_stream_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("big files (with --index: needs are read and written in chunks)")
    g.add_argument("--chunk-rows", type=int, default=2000, help="queries matched and written per chunk (default 2000)")
    g.add_argument("--resume", action="store_true",
                   help="continue an interrupted run: keep the chunks already written to --out, match the rest")


def cmd_demo(args: argparse.Namespace) -> None:
    """Match the demo corpus and print a readable summary."""
    from .demo import run_demo

    for name in ("achievements.jsonl", "needs.jsonl"):
        if not (args.corpus / name).is_file():
            raise CliError(f"{args.corpus / name} not found; run from the repository root or pass --corpus DIR")
    run_demo(args.corpus, args.out, _config(args), k=args.top_k, show=args.show, progress=_progress(args),
             rejects_path=_rejects_path(args, args.out), strict=args.strict)
