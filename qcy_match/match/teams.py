"""揭榜挂帅 and 创新联合体 over an engine's index: who can solve a challenge, and which partners together cover it.

The engine matches; :mod:`qcy_match.solvers` turns the matches into owner rankings and consortia. Everything here
reads one snapshot, so an update published meanwhile cannot mix two versions of the records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import UsageError
from ..solvers import consortium as cons
from ..solvers.parts import split_records
from ..solvers.votes import (
    EVIDENCE_SHOWN,
    OwnerTable,
    SolverRanking,
    VotingModel,
    rank_solvers,
    supporting,
    unowned,
    votes,
)
from . import filters as filt
from .snapshot import Snapshot

if TYPE_CHECKING:
    from .engine import MatchEngine, RecordsLike

# How a part is told apart from its challenge among the matched queries.
PART_SEP = "#part"


def owner_table(st: Snapshot, unit: str) -> OwnerTable:
    """The owners of snapshot ``st``'s records, built once per snapshot and unit."""
    key = f"owners:{unit}"
    if key not in st.derived:
        st.derived[key] = OwnerTable.from_records(st.records, unit)
    table: OwnerTable = st.derived[key]
    return table


def _check_side(engine: MatchEngine) -> None:
    if engine.side_ != "achievements":
        raise UsageError("solvers and consortia need an index of achievements (their owners are the solvers)")


def solvers(engine: MatchEngine, st: Snapshot, needs: RecordsLike | Sequence[str], k: int, filters: Any, unit: str,
            model: VotingModel | None, show_progress: bool) -> SolverRanking:
    """See :meth:`MatchEngine.solvers`."""
    _check_side(engine)
    model = (model or VotingModel()).check()
    table = owner_table(st, unit)
    m = engine._match_in(st, needs, model.depth, filters, False, show_progress)
    out = rank_solvers(m.query_ids, m.indices, m.scores, st.records, table, k, model)
    out.rejected = m.rejected
    return out


def consortium(engine: MatchEngine, st: Snapshot, needs: RecordsLike | Sequence[str],
               model: cons.ConsortiumModel | None, filters: Any, unit: str, voting: VotingModel | None,
               show_progress: bool) -> cons.Consortium:
    """See :meth:`MatchEngine.consortium`."""
    _check_side(engine)
    model = (model or cons.ConsortiumModel()).check()
    voting = (voting or VotingModel()).check()
    table = owner_table(st, unit)
    recs, rejected = engine._queries(needs)
    parts, unusable = split_records(recs)
    queries = pd.DataFrame({"id": [f"{n}{PART_SEP}{p}" for n, p in zip(parts["need_id"], parts["part"], strict=True)],
                            "title": parts["part_text"]})
    uncovered: list[dict[str, Any]] = [{"need_id": r.need_id, "part": None, "part_text": "", "reason": r.reason}
                                       for r in unusable.itertuples(index=False)]
    members: list[dict[str, Any]] = []
    if len(queries):
        m = engine._match_in(st, queries, voting.depth, filters, False, show_progress)
        ranked = votes(m.indices, m.scores, table, voting)
        shares = _shares(ranked, len(queries))
        supported = _supported(engine, st, queries["title"].tolist(), filters)
        support = supporting(m.indices, m.scores, table, voting.depth, st.records)
        region = dict(zip(recs["id"].astype(str), recs["region_group"].astype(str), strict=True))
        numbers = parts["part"].to_numpy(dtype=np.int64)
        texts = parts["part_text"].to_numpy(dtype=object)
        for need, rows in parts.groupby("need_id", sort=False).indices.items():
            found = _one(str(need), np.asarray(rows, dtype=np.int64), numbers, texts, shares, supported, support, table,
                         region.get(str(need), ""), model)
            members += found[0]
            uncovered += found[1]
        missing = unowned(parts["need_id"].tolist(), m.indices, st.records, table, voting.depth)
    else:
        missing = unowned([], np.full((0, 1), -1), st.records, table, voting.depth)
    member_cols = ["need_id", "member", "part", "part_text", "score", "evidence", "lead", "region", "same_region",
                   "note"]
    out = cons.Consortium(pd.DataFrame(members, columns=member_cols),
                          pd.DataFrame(uncovered, columns=["need_id", "part", "part_text", "reason"]).astype(
                              {"part": "Int64"}),
                          parts, missing, rejected)
    return out


def _shares(ranked: pd.DataFrame, n: int) -> list[dict[int, float]]:
    """Per part query: owner → its vote divided by the part's best vote."""
    out: list[dict[int, float]] = [{} for _ in range(n)]
    best = ranked.groupby("q")["score"].transform("max").to_numpy()
    for q, o, s, b in zip(ranked["q"].to_numpy(), ranked["owner"].to_numpy(), ranked["score"].to_numpy(), best,
                          strict=True):
        out[int(q)][int(o)] = float(s / b) if b > 0 else 0.0
    return out


def _supported(engine: MatchEngine, st: Snapshot, texts: list[str], filters: Any) -> np.ndarray:
    """Whether some record the filters let through shares a term with each part (dense similarity alone is no
    evidence that anyone works on it).
    """
    keep = st.positions(st.filters.mask(filt.parse([filters] if isinstance(filters, str) else filters)))
    out = np.zeros(len(texts), bool)
    for i, text in enumerate(engine._texts(pd.DataFrame({"title": texts, "description": ""}))):
        s = st.sparse.scores(engine.tokenizer_.tokenize(text, normalized=True, search_mode=False))
        out[i] = bool(((s > 0) if keep is None else (s > 0) & keep).any())
    return out


def _one(need: str, rows: np.ndarray, numbers: np.ndarray, texts: np.ndarray, shares: list[dict[int, float]],
         supported: np.ndarray, support: dict[tuple[int, int], list[tuple[str, float]]], table: OwnerTable,
         need_region: str, model: cons.ConsortiumModel) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Member rows and uncovered rows of one challenge whose part queries are ``rows``."""
    cands: dict[int, float] = {}
    for r in rows:
        if supported[r]:
            for o, s in sorted(shares[r].items(), key=lambda x: (-x[1], x[0]))[:model.per_part]:
                cands[o] = max(cands.get(o, 0.0), s)
    owners = sorted(cands, key=lambda o: (-cands[o], str(table.names[o])))[:model.max_candidates]
    ev = np.array([[shares[r].get(o, 0.0) if supported[r] else 0.0 for r in rows] for o in owners]).reshape(
        len(owners), len(rows))
    choice = cons.choose(ev, [str(table.home[o]) for o in owners], need_region, model,
                         [str(table.names[o]) for o in owners])
    members: list[dict[str, Any]] = []
    has_lead = [False] * len(rows)
    strongest = ev[choice.members].max(axis=0) if choice.members else np.zeros(len(rows))
    for c, covers in zip(choice.members, choice.covers, strict=True):
        o = owners[c]
        for j in (int(x) for x in np.flatnonzero(covers)):
            r = int(rows[j])
            lead = bool(not has_lead[j] and ev[c, j] >= strongest[j])
            has_lead[j] = has_lead[j] or lead
            shown = support.get((r, o), [])[:EVIDENCE_SHOWN]
            members.append({"need_id": need, "member": table.names[o], "part": int(numbers[r]),
                            "part_text": texts[r], "score": round(float(ev[c, j]), 4),
                            "evidence": "; ".join(f"{a}:{s:.3f}" for a, s in shown), "lead": lead,
                            "region": table.home[o], "same_region": bool(need_region) and table.home[o] == need_region,
                            "note": choice.note})
    members.sort(key=lambda x: int(x["part"]))
    covered = np.asarray(choice.covers.any(axis=0)) if choice.members else np.zeros(len(rows), bool)
    uncovered = []
    for j, r in enumerate(rows):
        if covered[j]:
            continue
        if not supported[r]:
            reason = "no indexed achievement shares a term with this part"
        elif shares[r]:
            best = min(shares[r], key=lambda o: (-shares[r][o], o))
            reason = (f"no chosen member covers it (at most {model.max_members} members); its strongest owner is "
                      f"{table.names[best]}")
        else:
            reason = "no matched achievement names an owner"
        uncovered.append({"need_id": need, "part": int(numbers[r]), "part_text": texts[r], "reason": reason})
    return members, uncovered
