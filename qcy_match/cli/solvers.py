"""``solvers`` (揭榜挂帅: who can solve each challenge) and ``consortium`` (创新联合体: which partners cover it)."""

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


def _add_common(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--achievements", type=Path, help="achievements file with an owner column (owner, 完成单位, "
                     "所属单位, 申报单位 or 单位), indexed on the fly")
    src.add_argument("--index", type=Path, help="index directory of achievements made by 'qcy-match index'")
    p.add_argument("--needs", type=Path, required=True, help="challenges (needs) file")
    p.add_argument("--out", type=Path, required=True, help="output table; format by extension: .csv .jsonl .xlsx")
    p.add_argument("--unit", choices=["owner", "team", "leader"], default="owner",
                   help="who is ranked: the owning institution (default), the team or the leader")
    p.add_argument("--depth", type=int, help="matched achievements per challenge (or part) that vote (default 300)")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=V1,V2",
                   help="restrict the achievements that vote, as in 'match' (e.g. region=关中, owner=西安交通大学)")
    _add_engine_options(p)
    _add_input_options(p)


def _add_solvers_parsers(sub: Any) -> None:
    p = sub.add_parser("solvers", help="揭榜挂帅: rank the owners (institutions, teams) best placed to solve each "
                       "challenge, with the achievements that support them")
    _add_common(p)
    p.add_argument("--top-k", type=int, default=5, help="owners per challenge (default 5)")
    p = sub.add_parser("consortium", help="创新联合体: split each challenge into its parts and propose at most "
                       "--max-members owners that together cover them")
    _add_common(p)
    p.add_argument("--max-members", type=int, default=3, help="members per consortium (default 3)")


def _prepare(args: argparse.Namespace, sidecars: list[str]) -> tuple[Any, Any, list[Any], Any]:
    """Everything before the work, in the order the other commands keep: outputs checked against the inputs, filters
    parsed, the achievements' engine loaded from --index or built, the needs read, filter keys checked against the
    achievements; nothing is written yet. Returns (engine, needs, rejected rows, parsed filters).
    """
    from ..match import filters as filt
    from ..match.engine import MatchEngine
    from ..solvers.votes import require_unit

    config = _config(args) if args.achievements else None
    outputs = [args.out, *(_sidecar(args.out, name) for name in sidecars), _rejects_path(args, args.out)]
    _check_paths(outputs, [args.achievements, args.needs],
                 [args.index, *map(Path, config.user_dicts if config else [])])
    parsed = filt.parse(args.filter)
    rejects: list[Any] = []
    if args.index:
        engine = MatchEngine.load(args.index)
        if engine.side_ != "achievements":
            raise CliError(f"{args.index} indexes needs; solvers and consortia need an index of achievements")
    else:
        achievements = _load(args.achievements, rejects, sheet=args.sheet)
        engine = MatchEngine(config).index(achievements, show_progress=_progress(args))
    needs = _load(args.needs, rejects, sheet=args.sheet)
    # An unknown filter key or a missing owner column fails here, before any output is written.
    filt.mask(engine.records_, parsed)
    require_unit(engine.records_, args.unit)
    return engine, needs, rejects, parsed


def _sidecar(out: Path, name: str) -> Path:
    """``OUT.stem.<name>.<same suffix>`` beside the output."""
    return out.with_name(f"{out.stem}.{name}{out.suffix}")


def _voting(args: argparse.Namespace) -> Any:
    from ..solvers.votes import VotingModel

    if args.depth is not None and args.depth < 1:
        raise CliError("--depth must be at least 1")
    return VotingModel() if args.depth is None else VotingModel(depth=args.depth)


def cmd_solvers(args: argparse.Namespace) -> None:
    """Rank the solvers of each challenge and write the table (and the unowned achievements, if any)."""
    from ..output.tables import write_table

    if args.top_k < 1:
        raise CliError("--top-k must be at least 1")
    voting = _voting(args)
    t0 = time.time()
    engine, needs, rejects, parsed = _prepare(args, ["unowned"])
    report = _finish_rejects(args, rejects, args.out)
    res = engine.solvers(needs, k=args.top_k, filters=parsed, unit=args.unit, model=voting,
                         show_progress=_progress(args))
    write_table(res.table, args.out)
    print(f"ranked {args.unit}s for {len(res.query_ids)} challenges: {len(res.table)} rows → {args.out} "
          f"({time.time() - t0:.1f} s){_unowned(res.unowned, args.out)}; {report}", file=sys.stderr)


def cmd_consortium(args: argparse.Namespace) -> None:
    """Propose a consortium per challenge; write its member rows and the uncovered parts."""
    from ..output.tables import write_table
    from ..solvers.consortium import ConsortiumModel

    if args.max_members < 1:
        raise CliError("--max-members must be at least 1")
    voting = _voting(args)
    t0 = time.time()
    engine, needs, rejects, parsed = _prepare(args, ["uncovered", "unowned"])
    report = _finish_rejects(args, rejects, args.out)
    res = engine.consortium(needs, max_members=args.max_members, filters=parsed, unit=args.unit,
                            model=ConsortiumModel(), voting=voting, show_progress=_progress(args))
    write_table(res.members, args.out)
    open_path = _sidecar(args.out, "uncovered")
    write_table(res.uncovered, open_path)
    done = res.parts["need_id"].nunique()
    print(f"consortia for {done} challenges ({res.members['member'].nunique()} distinct members) → {args.out}; "
          f"{len(res.uncovered)} uncovered parts or unusable challenges → {open_path} ({time.time() - t0:.1f} s)"
          f"{_unowned(res.unowned, args.out)}; {report}", file=sys.stderr)


def _unowned(frame: Any, out: Path) -> str:
    """Write the matched achievements that name no owner beside the output; the note for the summary line."""
    from ..output.tables import write_table

    if not len(frame):
        return ""
    path = _sidecar(out, "unowned")
    write_table(frame, path)
    return f"; {len(frame)} matched achievements name no owner (left out, not guessed) → {path}"
