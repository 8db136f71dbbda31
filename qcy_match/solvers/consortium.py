"""Innovation consortia (创新联合体): at most a few owners who together cover a challenge's parts.

Each part of a challenge (:mod:`qcy_match.solvers.parts`) ranks owners by the votes of their matched records
(:mod:`qcy_match.solvers.votes`); an owner's *evidence* on a part is its vote divided by the best owner's vote on
that part (1.0 = the strongest), and it *covers* the part when that share reaches ``cover_ratio``. The members are
the set of at most ``max_members`` owners that covers the most parts, then has the largest evidence summed over
parts (each part counted once, through its strongest member): a weighted maximum coverage, over sets whose every
member adds evidence (none rides along). Challenges have a handful of parts and each part a handful of plausible
owners, so every set is tried and the optimum is exact;
:func:`qcy_match.analytics.demand.greedy_cover` (the roadshow's unit-weight greedy cover) is not reused because
the evidence differs per owner and part and the region rule below compares whole sets.

Region: among the sets covering as many parts with evidence within ``closeness`` of the best, the one with the
most members in the challenge's region group (关中/陕北/陕南) wins, then the strongest; when that changes the
proposal, the note says which partners were preferred to which, and at what cost in evidence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd

from ..ingest.tables import Rejection


@dataclasses.dataclass(frozen=True)
class ConsortiumModel:
    """How members are chosen (see the module docstring); defaults tuned on the dev split of the solver benchmark."""

    max_members: int = 3
    per_part: int = 3
    cover_ratio: float = 0.7
    closeness: float = 0.1
    max_candidates: int = 40

    def check(self) -> ConsortiumModel:
        """Self, or ValueError naming the bad parameter."""
        if self.max_members < 1 or self.per_part < 1 or self.max_candidates < 1:
            raise ValueError("max_members, per_part and max_candidates must be at least 1")
        if not (0 < self.cover_ratio <= 1 and 0 <= self.closeness < 1):
            raise ValueError("cover_ratio must be in (0, 1] and closeness in [0, 1)")
        return self


@dataclasses.dataclass
class Choice:
    """The chosen members (rows of the evidence matrix, strongest first), the parts each covers, and the note."""

    members: list[int]
    covers: np.ndarray
    evidence: float
    note: str = ""


def _evaluate(eff: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every set of ``size`` candidates in which each member adds evidence (leaving it out would lower the sum):
    the sets, parts covered, summed evidence.
    """
    sets = np.array(list(combinations(range(eff.shape[0]), size)), dtype=np.int64).reshape(-1, size)
    vals = eff[sets]  # sets × members × parts
    best = vals.max(axis=1)
    needed = np.ones(len(sets), bool)
    for i in range(size):
        others = np.delete(vals, i, axis=1).max(axis=1) if size > 1 else np.zeros_like(best)
        needed &= (vals[:, i, :] > others + 1e-12).any(axis=1)
    return sets[needed], (best[needed] > 0).sum(axis=1), best[needed].sum(axis=1)


def choose(evidence: np.ndarray, regions: Sequence[str], need_region: str, model: ConsortiumModel,
           names: Sequence[str] | None = None) -> Choice:
    """Members for one challenge from ``evidence`` (candidates × parts, each column's best = 1.0, 0 = no vote).

    ``regions``: each candidate's home region group ('' unknown); ``need_region``: the challenge's ('' unknown:
    no preference); ``names`` are used in the note. Only sets whose every member adds evidence are considered.
    """
    model.check()
    covers = evidence >= model.cover_ratio
    eff = np.where(covers, evidence, 0.0)
    if eff.shape[0] == 0 or not covers.any():
        return Choice([], np.zeros((0, evidence.shape[1]), bool), 0.0)
    groups = [g for g in (_evaluate(eff, s) for s in range(1, min(model.max_members, eff.shape[0]) + 1))
              if len(g[0])]
    top_cov = max(int(c.max()) for _, c, _ in groups)
    top_ev = max(float(e[c == top_cov].max()) for _, c, e in groups if (c == top_cov).any())
    local = np.array([bool(need_region) and r == need_region for r in regions])
    # (-members in the challenge's region, -evidence, size, members) of every set close to the best.
    options: list[tuple[int, float, int, tuple[int, ...]]] = []
    for sets, cov, ev in groups:
        for row in np.flatnonzero((cov == top_cov) & (ev >= (1 - model.closeness) * top_ev - 1e-12)):
            members = tuple(int(x) for x in sets[row])
            options.append((-int(local[list(members)].sum()), -float(ev[row]), len(members), members))
    n_local, neg_ev, _, chosen = min(options)
    plain = min(options, key=lambda o: o[1:])  # what the evidence alone would choose
    note = ""
    if n_local < plain[0]:
        label = list(names) if names is not None else [str(i) for i in range(len(regions))]

        def who(ms: Sequence[int]) -> str:
            return "、".join(f"{label[m]}({regions[m] or '未知'})" for m in ms)

        note = (f"同区域优先 ({need_region}): {who([m for m in chosen if m not in plain[3]])} instead of "
                f"{who([m for m in plain[3] if m not in chosen])}; evidence {-neg_ev:.2f} vs {-plain[1]:.2f} "
                f"(within {model.closeness:.0%} of the best)")
    led = eff[list(chosen)]
    leads = ((led >= led.max(axis=0)) & (led > 0)).sum(axis=1)
    order = sorted(range(len(chosen)), key=lambda i: (-int(leads[i]), -float(led[i].sum()), chosen[i]))
    ranked = [chosen[i] for i in order]
    return Choice(ranked, covers[ranked], -neg_ev, note)


@dataclasses.dataclass
class Consortium:
    """Proposed consortia for a batch of challenges.

    ``members``: one row per member and part it covers: ``need_id, member, part, part_text, score`` (its evidence
    share on the part), ``evidence`` (its matched records for the part, ``id:score; …``), ``lead`` (the strongest
    member on that part), ``region``, ``same_region`` (as the challenge's group), ``note`` (the region choice, when
    it changed the proposal). ``uncovered``: ``need_id, part, part_text, reason`` for every part no member covers,
    and for every challenge without a usable part (``part`` empty). ``parts``: how each challenge was split.
    ``unowned``: matched records that name no owner (left out, not guessed). ``rejected``: challenges that failed
    validation.
    """

    members: pd.DataFrame
    uncovered: pd.DataFrame
    parts: pd.DataFrame
    unowned: pd.DataFrame
    rejected: list[Rejection] = dataclasses.field(default_factory=list)

    def covered_share(self) -> float:
        """Share of the challenges with usable parts whose every part is covered."""
        ids = set(self.parts["need_id"])
        if not ids:
            return 0.0
        open_ = set(self.uncovered["need_id"]) & ids
        return 1 - len(open_) / len(ids)
