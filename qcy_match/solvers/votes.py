"""Who can solve a challenge: owners ranked by the votes of their matched achievements (expert finding).

The challenge is matched against the achievements as usual; each of its best ``depth`` records then votes for its
owners with a weight that grows with its relevance, shared among them when a record has several, and an owner's
score is the sum of its votes. This is Balog et al.'s document model ("Formal models for expert finding in
enterprise corpora", SIGIR 2006, model 2: p(q|ca) = Σ_d p(q|d)·p(d|ca)) and, with exponential weights, Macdonald
& Ounis's expCombSUM voting model ("Voting for candidates", CIKM 2006). The other classic voting models are kept
by name so the choice can be measured (see benchmarks/solvers.py):

- ``expcombsum`` (default): a record at fused score s votes exp(γ·(s − 1)). γ sets how much one excellent match
  outweighs several good ones: an owner with several strong records beats one lucky match, while a single exact
  match (s ≈ 1) is not buried under a pile of weak ones (each weighs e^-γ·(1 − s)).
- ``combsum`` (votes s), ``combmnz`` (CombSUM × number of records), ``votes`` (each record 1), ``rr`` (1/rank).
- ``combmax``: the owner's best record alone: owners in the order their first record appears, i.e. the baseline
  "owner of the best-matching record".

An owner's score may be divided by (records it holds)^β (``size_norm``), Balog's candidate-size normalisation,
so an institution holding everything does not win every challenge by volume.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..ingest.owners import OWNER_FIELDS, owners_of
from ..ingest.records import MATURITY
from ..ingest.tables import Rejection

logger = logging.getLogger(__name__)

METHODS = ("expcombsum", "combsum", "combmnz", "combmax", "votes", "rr")
EVIDENCE_SHOWN = 10  # supporting records written out per owner (all are counted)
RELEVANT_SHARE = 0.5  # a matched record is evidence when it scores at least this share of the challenge's best


@dataclasses.dataclass(frozen=True)
class VotingModel:
    """How matched records vote for their owners (see the module docstring); defaults tuned on the dev split of
    the solver benchmark (README, "揭榜挂帅 and 创新联合体").
    """

    method: str = "expcombsum"
    depth: int = 300
    gamma: float = 8.0
    size_norm: float = 0.0
    share: bool = True

    def check(self) -> VotingModel:
        """Self, or ValueError naming the bad parameter."""
        if self.method not in METHODS:
            raise ValueError(f"unknown voting method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.depth < 1:
            raise ValueError("depth must be at least 1")
        if self.gamma < 0 or self.size_norm < 0:
            raise ValueError("gamma and size_norm must not be negative")
        return self


# The baseline the default is measured against: owners in the order of their best-matching record.
BASELINE = VotingModel(method="combmax", share=False)


def require_unit(records: pd.DataFrame, unit: str) -> None:
    """Raise unless ``records`` have the ``unit`` column (``owner``, ``team`` or ``leader``): owners are read from
    it, never guessed (:class:`~qcy_match.errors.InputError`; ValueError for an unknown unit).
    """
    if unit not in OWNER_FIELDS:
        raise ValueError(f"unit must be one of {', '.join(OWNER_FIELDS)}, not {unit!r}")
    if unit not in records.columns:
        raise InputError(f"the records have no {unit!r} column (for owners: owner, 完成单位, 所属单位, 申报单位 or "
                         "单位); solvers are read from it, never guessed")


@dataclasses.dataclass
class OwnerTable:
    """Which records each owner holds: record position → owner numbers (CSR), built once per set of records.

    ``names``: the distinct owners; ``sizes``: records per owner; ``home``: each owner's most common region group
    over its records ('' when none is known); ``missing``: records that name no owner.
    """

    unit: str
    names: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    sizes: np.ndarray
    home: np.ndarray
    missing: np.ndarray

    @classmethod
    def from_records(cls, records: pd.DataFrame, unit: str = "owner") -> OwnerTable:
        """The table of ``unit`` (``owner``, ``team`` or ``leader``) over prepared records.

        Raises :class:`~qcy_match.errors.InputError` when the records have no such column: owners are read, never
        guessed.
        """
        require_unit(records, unit)
        lists = [owners_of(c) for c in records[unit]]
        counts = np.fromiter((len(x) for x in lists), np.int64, len(lists))
        flat = [n for x in lists for n in x]
        codes, uniq = pd.factorize(pd.Series(flat, dtype=object), sort=False)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        names = np.asarray(uniq, dtype=object)
        sizes = np.bincount(codes, minlength=len(names)).astype(np.int64)
        groups = records["region_group"].astype(str).to_numpy() if "region_group" in records else \
            np.full(len(records), "", dtype=object)
        pairs = pd.DataFrame({"owner": codes, "group": np.repeat(groups, counts)})
        pairs = pairs[pairs["group"] != ""]
        home = np.full(len(names), "", dtype=object)
        if len(pairs):
            top = pairs.groupby(["owner", "group"]).size().reset_index(name="n").sort_values(
                ["owner", "n", "group"], ascending=[True, False, True]).drop_duplicates("owner")
            home[top["owner"].to_numpy()] = top["group"].to_numpy()
        return cls(unit, names, indptr, codes.astype(np.int64), sizes, home, counts == 0)


@dataclasses.dataclass
class SolverRanking:
    """Owners ranked per challenge: arrays of shape (challenges, k), best first, plus their table form.

    ``owners[i, j]`` is the j-th best owner for challenge ``query_ids[i]`` (None past the owners found), with score
    ``scores[i, j]`` and supporting records ``evidence[i][j]``: (achievement id, match score) of its relevant
    records (see :func:`supporting`), best first.
    ``table``: one row per (challenge, owner): ``need_id, owner, rank, score, evidence`` (``id:score; …``, the best
    ten), ``n_relevant`` (its relevant records: scoring at least half the challenge's best match, or its best one
    alone), ``best_maturity`` among them, ``region`` (the owner's home region group). ``unowned``: matched records
    that name no owner, reported and left out (never guessed). ``rejected``: challenges that failed validation.
    """

    query_ids: list[str]
    owners: np.ndarray
    scores: np.ndarray
    evidence: list[list[list[tuple[str, float]]]]
    table: pd.DataFrame
    unowned: pd.DataFrame
    rejected: list[Rejection] = dataclasses.field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """The ranking as rows (a copy of ``table``)."""
        return self.table.copy()

    def ranked(self) -> dict[str, list[str]]:
        """Challenge id → owners best first (for evaluation)."""
        return {q: [o for o in row if o is not None] for q, row in zip(self.query_ids, self.owners, strict=True)}


def _weights(scores: np.ndarray, ranks: np.ndarray, model: VotingModel) -> np.ndarray:
    """The vote of a record at fused score ``scores`` and 0-based rank ``ranks`` before sharing."""
    if model.method == "expcombsum":
        return np.exp(model.gamma * (scores - 1.0))
    if model.method == "votes":
        return np.ones_like(scores)
    if model.method == "rr":
        return 1.0 / (ranks + 1.0)
    return scores.astype(np.float64)


def votes(indices: np.ndarray, scores: np.ndarray, table: OwnerTable, model: VotingModel) -> pd.DataFrame:
    """Every (challenge, owner) pair with a vote: columns ``q`` (row of ``indices``), ``owner`` (number in
    ``table.names``), ``score``, ``first`` (rank of its best record), sorted best first within each challenge.

    ``indices`` / ``scores``: the match arrays (challenges × ranked records, -1 / NaN past the end) over the same
    records as ``table``.
    """
    model.check()
    exploded = _explode(indices, scores, table, model.depth)
    if len(exploded) == 0:
        return pd.DataFrame({"q": np.empty(0, np.int64), "owner": np.empty(0, np.int64),
                             "score": np.empty(0), "first": np.empty(0, np.int64)})
    w = _weights(exploded["s"].to_numpy(np.float64), exploded["j"].to_numpy(np.float64), model)
    if model.share:
        w = w / exploded["n_owners"].to_numpy()
    exploded = exploded.assign(w=w)
    g = exploded.groupby(["q", "owner"], sort=False)
    agg = g.agg(total=("w", "sum"), best=("w", "max"), count=("w", "size"), first=("j", "min")).reset_index()
    chosen = {"combmax": agg["best"], "combmnz": agg["total"] * agg["count"]}.get(model.method, agg["total"])
    score = chosen.to_numpy(np.float64)
    if model.size_norm:
        score = score / table.sizes[agg["owner"].to_numpy()].astype(np.float64) ** model.size_norm
    out = pd.DataFrame({"q": agg["q"].to_numpy(), "owner": agg["owner"].to_numpy(), "score": score,
                        "first": agg["first"].to_numpy()})
    # Ties: the owner whose best record ranks higher, then by name, so results never depend on hash order.
    out["name"] = table.names[out["owner"].to_numpy()]
    out = out.sort_values(["q", "score", "first", "name"], ascending=[True, False, True, True], ignore_index=True)
    return out.drop(columns="name")


def _explode(indices: np.ndarray, scores: np.ndarray, table: OwnerTable, depth: int) -> pd.DataFrame:
    """One row per (challenge, ranked record within ``depth``, owner of that record)."""
    idx = indices[:, :depth]
    q, j = np.nonzero(idx >= 0)
    pos = idx[q, j]
    counts = table.indptr[pos + 1] - table.indptr[pos]
    total = int(counts.sum())
    starts = np.repeat(table.indptr[pos], counts)
    within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    return pd.DataFrame({"q": np.repeat(q, counts), "j": np.repeat(j, counts), "pos": np.repeat(pos, counts),
                         "s": np.repeat(scores[q, j].astype(np.float64), counts),
                         "owner": table.indices[starts + within], "n_owners": np.repeat(counts, counts)})


def rank_solvers(query_ids: Sequence[str], indices: np.ndarray, scores: np.ndarray, records: pd.DataFrame,
                 table: OwnerTable, k: int = 5, model: VotingModel | None = None) -> SolverRanking:
    """The ``k`` best owners per challenge from the match arrays (see :func:`votes`), with their evidence.

    ``records`` are the matched records (the same ones, in the same order, as ``table``).
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    model = (model or VotingModel()).check()
    ranked = votes(indices, scores, table, model)
    top = ranked.groupby("q", sort=False).head(k).copy()
    top["rank"] = top.groupby("q").cumcount() + 1
    n = len(query_ids)
    owners = np.full((n, k), None, dtype=object)
    vals = np.full((n, k), np.nan)
    q, r = top["q"].to_numpy(), top["rank"].to_numpy() - 1
    owners[q, r] = table.names[top["owner"].to_numpy()]
    vals[q, r] = top["score"].to_numpy()
    support = supporting(indices, scores, table, model.depth, records)
    evidence: list[list[list[tuple[str, float]]]] = [[[] for _ in range(k)] for _ in range(n)]
    for qi, ri, oi in zip(q, r, top["owner"].to_numpy(), strict=True):
        evidence[qi][ri] = support.get((int(qi), int(oi)), [])
    frame = _table(query_ids, top, table, evidence, records)
    return SolverRanking(list(query_ids), owners, vals, evidence, frame, unowned(query_ids, indices, records, table,
                                                                                 model.depth))


def supporting(indices: np.ndarray, scores: np.ndarray, table: OwnerTable, depth: int, records: pd.DataFrame
               ) -> dict[tuple[int, int], list[tuple[str, float]]]:
    """(challenge, owner) → its relevant matched records as (id, score), best first.

    Relevant: scoring at least :data:`RELEVANT_SHARE` of the challenge's best match (deep records still vote, with
    weights near zero, but are no evidence to show); an owner's best record is always kept.
    """
    ex = _explode(indices, scores, table, depth)
    ids = records["id"].astype(str).to_numpy()
    top = np.nanmax(np.where(indices >= 0, scores, np.nan), axis=1, initial=0.0) if indices.size else np.zeros(0)
    out: dict[tuple[int, int], list[tuple[str, float]]] = {}
    for qi, oi, pos, s in zip(ex["q"].to_numpy(), ex["owner"].to_numpy(), ex["pos"].to_numpy(), ex["s"].to_numpy(),
                              strict=True):  # rows come in rank order within each challenge
        got = out.setdefault((int(qi), int(oi)), [])
        if not got or s >= RELEVANT_SHARE * top[qi]:
            got.append((str(ids[pos]), round(float(s), 4)))
    return out


def _table(query_ids: Sequence[str], top: pd.DataFrame, table: OwnerTable,
           evidence: list[list[list[tuple[str, float]]]], records: pd.DataFrame) -> pd.DataFrame:
    """The ranking's rows (see :class:`SolverRanking`)."""
    maturity = dict(zip(records["id"].astype(str), records["maturity"].astype(str), strict=True)) \
        if "maturity" in records else {}
    order = {m: i for i, m in enumerate(MATURITY)}
    rows = []
    for qi, ri, oi, score in zip(top["q"], top["rank"], top["owner"], top["score"], strict=True):
        ev = evidence[qi][ri - 1]
        levels = [maturity.get(a, "") for a, _ in ev]
        known = [m for m in levels if m in order]
        rows.append({"need_id": query_ids[qi], "owner": table.names[oi], "rank": int(ri), "score": round(score, 6),
                     "evidence": "; ".join(f"{a}:{s:.3f}" for a, s in ev[:EVIDENCE_SHOWN]),
                     "n_relevant": len(ev), "best_maturity": max(known, key=order.__getitem__) if known else "",
                     "region": table.home[oi]})
    return pd.DataFrame(rows, columns=["need_id", "owner", "rank", "score", "evidence", "n_relevant",
                                       "best_maturity", "region"])


def unowned(query_ids: Sequence[str], indices: np.ndarray, records: pd.DataFrame, table: OwnerTable, depth: int
            ) -> pd.DataFrame:
    """Matched records (within ``depth``) that name no owner: ``achievement_id, title, need_ids, best_rank``.

    Their votes go to nobody; they are listed so someone can fill the owner in.
    """
    idx = indices[:, :depth]
    q, j = np.nonzero(idx >= 0)
    pos = idx[q, j]
    hit = table.missing[pos]
    if not hit.any():
        return pd.DataFrame(columns=["achievement_id", "title", "need_ids", "best_rank"])
    df = pd.DataFrame({"pos": pos[hit], "need": np.asarray(query_ids, dtype=object)[q[hit]], "rank": j[hit] + 1})
    g = df.groupby("pos", sort=True).agg(need_ids=("need", lambda s: ";".join(dict.fromkeys(s))),
                                         best_rank=("rank", "min")).reset_index()
    out = pd.DataFrame({"achievement_id": records["id"].astype(str).to_numpy()[g["pos"]],
                        "title": records["title"].to_numpy()[g["pos"]], "need_ids": g["need_ids"].to_numpy(),
                        "best_rank": g["best_rank"].to_numpy()})
    logger.warning("%d matched achievements name no %s; their evidence is left out (listed, not guessed)",
                   len(out), table.unit)
    return out.sort_values(["best_rank", "achievement_id"], ignore_index=True)
