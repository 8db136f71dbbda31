"""Demand analytics: supply–demand gaps by industry, chain and region, unused supply, and roadshow shortlists.

Everything starts from :func:`analyse`, which matches every need against the achievements once (the engine's
top-k). The engine's fused score is scaled per query (the best candidate of every need scores near 1), so it
cannot say whether a need's best match is weak; each match's calibrated ``confidence`` can (the estimated chance a
broker accepts it, :mod:`qcy_match.match.confidence`). A need is *weak* when the engine's own top match has a
confidence below ``min_confidence``, and that top match is the one shown as its best achievement.

Needs without an industry code get one from a classifier (marked ``industry_source = inferred``) so the gap tables
by industry and chain say something on real, uncoded needs: a supervised one trained on the indexed achievements'
own codes when they have enough, else zero-shot against GB/T 4754 (0.900 against 0.455 top-1 on the demo needs).
The inferred codes are used for grouping only, never for matching.

Pairs also carry a *match strength*, the cosine of the two records' TF-IDF vectors over jieba tokens; the roadshow
and the unused-supply table (which look past each need's top match, at every achievement–need pair) count a pair
as good when its strength reaches a threshold calibrated on the inputs (:func:`calibrate_threshold`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ..config import EngineConfig
from ..ingest.records import from_any, text_of
from ..match import filters
from ..match.engine import MatchEngine, RecordsLike
from ..taxonomy import chains
from ..taxonomy import gbt as taxonomy
from ..text import Tokenizer

logger = logging.getLogger(__name__)

DIMENSIONS = ("industry", "chain", "region")
UNKNOWN = {"industry": "未分类", "chain": chains.OTHER, "region": "未知"}
MAX_CALIBRATION_PAIRS = 200_000
MIN_CONFIDENCE = 0.5  # a need is weak when its top match is more likely rejected than accepted
CLASSIFY_THRESHOLD = 0.3  # the least classifier confidence at which a need without a code is tagged
MIN_CODED = 20  # coded achievements needed to train on their codes rather than classify zero-shot


@dataclass
class DemandAnalysis:
    """One matching run over both sides and what the tables are computed from.

    ``needs`` and ``achievements`` are the validated records plus the columns ``industry_group`` (GB/T 4754 大类 of
    the first code), ``chain`` (:func:`qcy_match.taxonomy.chains.record_chain`) and ``region_group``
    (关中/陕北/陕南); each record is counted under exactly one group per dimension (see :func:`group_of`), so group
    counts add up to the inputs. ``needs`` also has ``industry_source`` (given / inferred / empty). ``pairs`` holds
    each need's engine top-k with ``rank``, fused ``score``, ``confidence`` and ``strength``.
    """

    needs: pd.DataFrame
    achievements: pd.DataFrame
    pairs: pd.DataFrame
    threshold: float
    threshold_rule: str
    k: int
    engine: MatchEngine
    need_matrix: sparse.csr_matrix
    achievement_matrix: sparse.csr_matrix
    min_confidence: float = MIN_CONFIDENCE
    weak_rule: str = ""
    industry_rule: str = ""

    def best(self) -> pd.DataFrame:
        """Per need: the engine's top match, its confidence and strength, and whether it is weak (confidence below
        ``min_confidence``, or no match at all).
        """
        top = self.pairs[self.pairs["rank"] == 1].set_index("need_id")
        out = pd.DataFrame({"need_id": self.needs["id"]})
        out["best_achievement_id"] = out["need_id"].map(top["achievement_id"])
        out["best_confidence"] = out["need_id"].map(top["confidence"]).fillna(0.0)
        out["best_strength"] = out["need_id"].map(top["strength"]).fillna(0.0)
        out["weak"] = out["best_confidence"] < self.min_confidence
        return out

    def good_pairs(self, min_strength: float | None = None) -> pd.DataFrame:
        """The pairs of the top-k whose strength reaches ``min_strength`` (default: the calibrated threshold)."""
        return self.pairs[self.pairs["strength"] >= (self.threshold if min_strength is None else min_strength)]


def group_of(records: pd.DataFrame, dim: str) -> pd.Series:
    """The one group each record is counted under for ``dim`` (industry 大类 such as 'C34 通用设备制造业', chain,
    or region group), for the gap and topic tables.

    This is grouping, not filtering: a record belongs to exactly one group, so the groups' counts add up to the
    inputs. Selecting records (a roadshow's scope) is filtering and goes through the search's filters
    (:func:`scope_mask`), where a chain means the codes it covers. The two can differ: a record whose own
    ``chain`` column says 氢能 but whose codes are M7452 and C3130 (steel) is counted under 氢能 here, yet a
    filter on chain 钢铁深加工 selects it and one on 氢能 does not.
    """
    if dim == "industry":
        def major(codes: Any) -> str:
            codes = list(codes) if codes is not None else []
            if not codes:
                return UNKNOWN["industry"]
            code = str(codes[0])[:3]
            return f"{code} {taxonomy.name_of(code)}".strip()
        return pd.Series([major(c) for c in records["industry"]], index=records.index, dtype=object)
    if dim == "chain":
        return pd.Series([chains.record_chain({str(k): v for k, v in r.items()})
                          for r in records.to_dict("records")], index=records.index,
                         dtype=object)
    if dim == "region":
        return records["region_group"].replace("", UNKNOWN["region"]).fillna(UNKNOWN["region"]).astype(object)
    raise ValueError(f"unknown dimension {dim!r}; choose one of {', '.join(DIMENSIONS)}")


def _with_groups(records: pd.DataFrame) -> pd.DataFrame:
    out = records.copy()
    out["industry_group"] = group_of(out, "industry")
    out["chain"] = group_of(out, "chain")
    return out


def _column(dim: str) -> str:
    return {"industry": "industry_group", "chain": "chain", "region": "region_group"}[dim]


def _tfidf(tokens_a: list[list[str]], tokens_b: list[list[str]]) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """Unit-length TF-IDF rows for both sides, IDF counted over both, sublinear TF."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer=lambda toks: toks, sublinear_tf=True)
    vec.fit(tokens_a + tokens_b)
    return vec.transform(tokens_a).tocsr(), vec.transform(tokens_b).tocsr()


def calibrate_threshold(needs: sparse.csr_matrix, achievements: sparse.csr_matrix, seed: int = 0
                        ) -> tuple[float, str]:
    """The strength a need's best match must reach to count as good, and the rule in words.

    Rule: the (1 − 1/m) quantile of the strengths of need–achievement pairs taken at random (all pairs when there
    are at most 200 000, else a seeded sample), m = number of achievements. A need whose best match falls below it
    is served no better than the best of m random achievements would typically serve it.
    """
    n, m = needs.shape[0], achievements.shape[0]
    if n == 0 or m == 0:
        return 1.0, "no pairs to calibrate on"
    if n * m <= MAX_CALIBRATION_PAIRS:
        values = np.concatenate([(needs[i:i + 512] @ achievements.T).toarray().ravel() for i in range(0, n, 512)])
        how = f"all {n * m} need–achievement pairs"
    else:
        rng = np.random.default_rng(seed)
        rows = rng.integers(0, n, MAX_CALIBRATION_PAIRS)
        cols = rng.integers(0, m, MAX_CALIBRATION_PAIRS)
        values = np.asarray(needs[rows].multiply(achievements[cols]).sum(axis=1)).ravel()
        how = f"{MAX_CALIBRATION_PAIRS} random need–achievement pairs (seed {seed})"
    q = 1.0 - 1.0 / m
    value = float(np.quantile(values, q))
    rule = (f"match strength (TF-IDF cosine of the two texts) ≥ {value:.3f}: the {q:.4f} quantile (1 − 1/{m}) of "
            f"the strengths of {how}, i.e. better than the best of {m} random achievements typically is")
    return value, rule


def infer_industries(needs: pd.DataFrame, achievements: pd.DataFrame, threshold: float = CLASSIFY_THRESHOLD
                     ) -> tuple[pd.DataFrame, str]:
    """``needs`` with GB/T 4754 大类 codes and chains inferred where they have neither, and the rule used, in words.

    ``industry_source`` and ``chain_source`` say given / inferred / empty (still unknown: the classifier was less
    sure than ``threshold``). A 大类 code alone rarely names a chain (chains list finer codes), so the chain is
    classified on its own. Each classifier is trained on the achievements' own labels (main code at 大类; chain as
    the report counts it) when at least :data:`MIN_CODED` of them have one and they name two or more (the linear
    model: fast, and on the demo needs 0.900 top-1 against 0.455 for zero-shot), else zero-shot.
    """
    from ..taxonomy.gbt import at_level

    no_code = np.array([len(c) == 0 for c in needs["industry"]], dtype=bool)
    own_chain = needs["chain"] if "chain" in needs else pd.Series("", index=needs.index)
    no_chain = no_code & ~np.array([isinstance(c, str) and bool(c.strip()) for c in own_chain], dtype=bool)
    out = needs.copy()
    out["industry_source"] = np.where(no_code, "", "given").astype(object)
    out["chain_source"] = np.where(no_chain, "", "given").astype(object)
    if not no_code.any():
        return out, "every need has an industry code"
    codes = [at_level(str(c[0]), 2) if len(c) else "" for c in achievements["industry"]]
    model, how = _classifier(achievements, codes, "大类")
    pred = model.predict(needs[no_code].reset_index(drop=True), k=1)
    new_codes = list(out["industry"])
    source = out["industry_source"].to_numpy()
    for j, i in enumerate(np.flatnonzero(no_code)):
        if pred.confidence[j, 0] >= threshold:
            new_codes[i], source[i] = [str(pred.labels[j, 0])], "inferred"
    out["industry"], out["industry_source"] = new_codes, source
    notes = [f"{int((out['industry_source'] == 'inferred').sum())} of {int(no_code.sum())} needs without an "
             f"industry code were given one by {how}"]
    if no_chain.any():
        chains_of = [chains.record_chain({str(k): v for k, v in r.items()}) for r in achievements.to_dict("records")]
        model, how = _classifier(achievements, [c if c != chains.OTHER else "" for c in chains_of], "chain")
        pred = model.predict(needs[no_chain].reset_index(drop=True), k=1)
        chain_col = list(own_chain.fillna(""))
        source = out["chain_source"].to_numpy()
        for j, i in enumerate(np.flatnonzero(no_chain)):
            if pred.confidence[j, 0] >= threshold:
                chain_col[i], source[i] = str(pred.labels[j, 0]), "inferred"
        out["chain"], out["chain_source"] = chain_col, source
        notes.append(f"{int((out['chain_source'] == 'inferred').sum())} of {int(no_chain.sum())} a chain by {how}")
    return out, "; ".join(notes) + f" (confidence ≥ {threshold}; *_source = inferred)"


def _classifier(achievements: pd.DataFrame, labels: list[str], zero_shot_level: str) -> tuple[Any, str]:
    """A classifier trained on the achievements' non-empty ``labels`` when there are enough, else zero-shot."""
    from ..classify import TextClassifier, ZeroShotClassifier

    have = [bool(v) for v in labels]
    kept = [v for v in labels if v]
    if len(kept) >= MIN_CODED and len(set(kept)) >= 2:
        model = TextClassifier(dense=None).fit(text_of(achievements[have]), kept)
        return model, f"a classifier trained on {len(kept)} achievements' own labels"
    return ZeroShotClassifier(zero_shot_level).fit(), f"zero-shot classification ({zero_shot_level})"


def analyse(achievements: RecordsLike, needs: RecordsLike, engine: MatchEngine | None = None, k: int = 10,
            config: EngineConfig | None = None, seed: int = 0, min_confidence: float = MIN_CONFIDENCE,
            classify_missing: bool = True) -> DemandAnalysis:
    """Match every need to the achievements (top ``k``), score the pairs, and tell weak needs (top match's
    confidence below ``min_confidence``).

    ``engine``, when given, must be an index of the same achievements (its records are used); otherwise one is
    built with ``config``. ``classify_missing`` infers industry codes for needs without one
    (:func:`infer_industries`), for grouping.
    """
    if not 0 <= min_confidence <= 1:
        raise ValueError("min_confidence must be between 0 and 1")
    if engine is None:
        engine = MatchEngine(config).index(achievements, side="achievements")
    elif engine.side_ != "achievements":
        raise ValueError("analyse() needs an engine over achievements")
    ach = _with_groups(engine.records_)
    need_recs, rejects = from_any(needs)
    if rejects:
        logger.warning("%d needs rejected before analysis", len(rejects))
    need_recs = need_recs.reset_index(drop=True)
    # The engine reads the needs as given: an inferred code is a guess and must not lift a match's confidence.
    result = engine.match(need_recs, k=k, explain_matches=False)
    industry_rule = "industry codes as given"
    if classify_missing:
        need_recs, industry_rule = infer_industries(need_recs, engine.records_)
    else:
        need_recs = need_recs.assign(industry_source=["given" if len(c) else "" for c in need_recs["industry"]],
                                     chain_source="given")
    nd = _with_groups(need_recs)
    tok = Tokenizer(user_dicts=engine.config.user_dicts, user_words=engine.config.user_words,
                    domain_dict=engine.config.domain_dict)
    n_mat, a_mat = _tfidf([tok.tokenize(t, normalized=True) for t in text_of(nd)],
                          [tok.tokenize(t, normalized=True) for t in text_of(ach)])
    threshold, rule = calibrate_threshold(n_mat, a_mat, seed)
    rows, cols = np.nonzero(result.indices >= 0)
    docs = result.indices[rows, cols]
    strength = np.asarray(n_mat[rows].multiply(a_mat[docs]).sum(axis=1)).ravel()
    pairs = pd.DataFrame({"need_id": nd["id"].to_numpy()[rows], "achievement_id": ach["id"].to_numpy()[docs],
                          "rank": cols + 1, "score": result.scores[rows, cols].astype(float),
                          "confidence": result.confidence[rows, cols].astype(float).round(4),  # type: ignore[index]
                          "strength": strength.round(6)})
    weak_rule = (f"weak need: the engine's top match has confidence < {min_confidence} (the calibrated chance a "
                 "broker accepts it), or there is none")
    logger.info("analysed %d needs × %d achievements; threshold %.3f", len(nd), len(ach), threshold)
    return DemandAnalysis(nd, ach, pairs, threshold, rule, k, engine, n_mat, a_mat, min_confidence, weak_rule,
                          industry_rule)


def gap_table(analysis: DemandAnalysis, by: str = "chain") -> pd.DataFrame:
    """Supply and demand per group: needs (``inferred`` of them grouped by an inferred code or chain),
    achievements, needs whose top match is weak, and which ones.
    """
    col = _column(by)
    source = {"industry": "industry_source", "chain": "chain_source"}.get(by)
    nd = analysis.needs
    best = analysis.best().merge(nd[["id", col]], left_on="need_id", right_on="id")
    best["inferred"] = (nd[source] == "inferred").to_numpy() if source and source in nd else False
    demand = best.groupby(col).agg(needs=("need_id", "size"), inferred=("inferred", "sum"),
                                   weak_needs=("weak", "sum"), mean_best_confidence=("best_confidence", "mean"))
    weak_ids = best[best["weak"]].groupby(col)["need_id"].agg(lambda s: ";".join(s))
    supply = analysis.achievements.groupby(col).size().rename("achievements")
    out = demand.join(supply, how="outer").fillna({"needs": 0, "inferred": 0, "weak_needs": 0,
                                                   "achievements": 0})
    out["weak_needs_listed"] = weak_ids.reindex(out.index).fillna("")
    counts = ["needs", "inferred", "weak_needs", "achievements"]
    out[counts] = out[counts].astype(int)
    out["weak_share"] = np.where(out["needs"] > 0, out["weak_needs"] / out["needs"].clip(lower=1), np.nan)
    out["achievements_per_need"] = np.where(out["needs"] > 0, out["achievements"] / out["needs"].clip(lower=1),
                                            np.nan)
    out = out.reset_index().rename(columns={col: by})
    out = out[[by, "needs", "inferred", "achievements", "achievements_per_need", "weak_needs", "weak_share",
               "mean_best_confidence", "weak_needs_listed"]]
    return out.sort_values(["weak_share", "needs"], ascending=[False, False], na_position="last",
                           ignore_index=True).round(4)


def unmatched_needs(analysis: DemandAnalysis) -> pd.DataFrame:
    """Needs whose top match is weak (see :meth:`DemandAnalysis.best`), with that match: candidates for new
    technology search or a 揭榜挂帅 open call.
    """
    best = analysis.best()
    weak = best[best["weak"]]
    nd = analysis.needs.set_index("id")
    ach = analysis.achievements.set_index("id")
    out = pd.DataFrame({"need_id": weak["need_id"].to_numpy()})
    out["title"] = out["need_id"].map(nd["title"])
    if "enterprise" in nd:
        out["enterprise"] = out["need_id"].map(nd["enterprise"])
    for col in ("industry_group", "industry_source", "chain", "chain_source", "region_group"):
        out[col] = out["need_id"].map(nd[col])
    out["best_achievement_id"] = weak["best_achievement_id"].to_numpy()
    out["best_achievement_title"] = out["best_achievement_id"].map(ach["title"])
    out["best_confidence"] = weak["best_confidence"].round(4).to_numpy()
    out["best_strength"] = weak["best_strength"].round(4).to_numpy()
    return out.sort_values(["best_confidence", "need_id"], ignore_index=True)


def unused_supply(analysis: DemandAnalysis) -> pd.DataFrame:
    """Achievements in no need's top-k, each with its best-fitting need anyway (highest strength over all needs)."""
    used = set(analysis.pairs["achievement_id"])
    ach = analysis.achievements
    rows = np.flatnonzero(~ach["id"].isin(used).to_numpy())
    out = ach.iloc[rows][["id", "title", "industry_group", "chain", "region_group"]].rename(
        columns={"id": "achievement_id"}).reset_index(drop=True)
    if "owner" in ach:
        out.insert(2, "owner", ach.iloc[rows]["owner"].to_numpy())
    if len(rows) and analysis.need_matrix.shape[0]:
        sims = (analysis.achievement_matrix[rows] @ analysis.need_matrix.T).toarray()
        j = sims.argmax(axis=1)
        nd = analysis.needs
        out["best_need_id"] = nd["id"].to_numpy()[j]
        out["best_need_title"] = nd["title"].to_numpy()[j]
        if "enterprise" in nd:
            out["best_need_enterprise"] = nd["enterprise"].to_numpy()[j]
        out["best_strength"] = sims[np.arange(len(rows)), j].round(4)
        out["good"] = out["best_strength"] >= analysis.threshold
    return out.sort_values(["industry_group", "achievement_id"], ignore_index=True)


def unused_by(analysis: DemandAnalysis, by: str = "industry") -> pd.DataFrame:
    """Per group: achievements, how many are in nobody's top-k, and the share."""
    col = _column(by)
    used = analysis.achievements["id"].isin(set(analysis.pairs["achievement_id"]))
    out = pd.DataFrame({by: analysis.achievements[col], "unused": ~used}).groupby(by).agg(
        achievements=("unused", "size"), unused=("unused", "sum"))
    out["unused_share"] = (out["unused"] / out["achievements"]).round(4)
    return out.reset_index().sort_values(["unused", by], ascending=[False, True], ignore_index=True)


def scope_filters(chain: str | None = None, industry: str | None = None, region: str | None = None
                  ) -> dict[str, list[str]]:
    """A roadshow scope as the search's filters, checked now.

    Each value may list several, comma-separated, OR-ed: ``chain`` is a chain name (it means the GB/T 4754 codes
    the chain covers), ``industry`` a code at any level, ``region`` a group, city or district. An unknown chain or
    code raises :class:`~qcy_match.errors.FilterError`.
    """
    spec = {key: value for key, value in (("chain", chain), ("industry", industry), ("region", region)) if value}
    return filters.parse(spec)


def scope_mask(records: pd.DataFrame, scope: Mapping[str, list[str]]) -> np.ndarray:
    """Which records fall in a scope of :func:`scope_filters`: exactly those a search with the same filters sees."""
    keep = filters.mask(records, scope)
    return np.ones(len(records), dtype=bool) if keep is None else keep


def served_sets(analysis: DemandAnalysis, chain: str | None = None, industry: str | None = None,
                region: str | None = None, min_strength: float | None = None) -> dict[str, set[str]]:
    """For each in-scope achievement, the in-scope needs it serves well: it is in their top-k with strength at
    least ``min_strength`` (default: the calibrated threshold). The scope is the search's filters
    (:func:`scope_filters`), applied to both sides.
    """
    scope = scope_filters(chain, industry, region)
    need_ids = set(analysis.needs["id"][scope_mask(analysis.needs, scope)])
    ach_ids = set(analysis.achievements["id"][scope_mask(analysis.achievements, scope)])
    good = analysis.good_pairs(min_strength)
    good = good[good["need_id"].isin(need_ids) & good["achievement_id"].isin(ach_ids)]
    return {str(a): set(g["need_id"]) for a, g in good.groupby("achievement_id")}


def greedy_cover(sets: Mapping[str, set[str]], slots: int, weight: Mapping[str, float] | None = None) -> list[str]:
    """Greedy maximum coverage: repeatedly take the set adding the most uncovered elements (ties: larger
    ``weight``, then smaller key). When the ``slots`` largest sets together cover more, they are returned instead,
    so the result is never worse than choosing by individual size.
    """
    weight = weight or {}
    chosen: list[str] = []
    covered: set[str] = set()
    left = dict(sets)
    while left and len(chosen) < slots:
        key = min(left, key=lambda a: (-len(left[a] - covered), -weight.get(a, 0.0), a))
        if not left[key] - covered:
            break
        chosen.append(key)
        covered |= left.pop(key)
    by_size = sorted(sets, key=lambda a: (-len(sets[a]), -weight.get(a, 0.0), a))[:slots]
    if len(_union(sets, by_size)) > len(covered):
        logger.info("greedy cover lost to the %d largest sets; using those", slots)
        return by_size
    return chosen


def _union(sets: Mapping[str, set[str]], keys: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for key in keys:
        out |= sets[key]
    return out


def roadshow(analysis: DemandAnalysis, slots: int = 5, chain: str | None = None, industry: str | None = None,
             region: str | None = None, min_strength: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Achievements to present in ``slots`` roadshow slots so that together they serve the most distinct in-scope
    needs well (each need counted once), and the enterprises to invite. Scope: ``chain`` (name), ``industry``
    (GB/T 4754 code at any level) and ``region`` (group, city or district) restrict both sides, with the meaning
    they have as search filters (:func:`scope_filters`); an unknown chain or code raises
    :class:`~qcy_match.errors.FilterError`.

    Returns ``(shortlist, invitations)``: one row per slot with the needs it newly serves and the running
    coverage; one row per enterprise with its needs and the shortlisted achievements that serve them.
    """
    if slots < 1:
        raise ValueError("slots must be at least 1")
    sets = served_sets(analysis, chain, industry, region, min_strength)
    good = analysis.good_pairs(min_strength)
    weight = {str(a): float(w) for a, w in good.groupby("achievement_id")["strength"].sum().items()}
    chosen = greedy_cover(sets, slots, weight)
    ach = analysis.achievements.set_index("id")
    nd = analysis.needs.set_index("id")
    rows: list[dict[str, Any]] = []
    covered: set[str] = set()
    for slot, aid in enumerate(chosen, 1):
        new = sorted(sets[aid] - covered)
        covered |= sets[aid]
        rows.append({"slot": slot, "achievement_id": aid, "title": ach.at[aid, "title"],
                     "owner": ach.at[aid, "owner"] if "owner" in ach else "", "chain": ach.at[aid, "chain"],
                     "needs_served": len(sets[aid]), "new_needs": len(new), "covered_total": len(covered),
                     "need_ids": ";".join(sorted(sets[aid]))})
    shortlist = pd.DataFrame(rows, columns=["slot", "achievement_id", "title", "owner", "chain", "needs_served",
                                            "new_needs", "covered_total", "need_ids"])
    sel = good[good["achievement_id"].isin(chosen) & good["need_id"].isin(covered)]
    inv: list[dict[str, Any]] = []
    for nid, g in sel.sort_values("strength", ascending=False).groupby("need_id", sort=True):
        ent = nd.at[nid, "enterprise"] if "enterprise" in nd and isinstance(nd.at[nid, "enterprise"], str) else ""
        inv.append({"enterprise": ent or str(nid), "need_id": nid, "need_title": nd.at[nid, "title"],
                    "region": nd.at[nid, "region"], "achievement_ids": ";".join(g["achievement_id"]),
                    "best_strength": round(float(g["strength"].max()), 4)})
    invitations = pd.DataFrame(inv, columns=["enterprise", "need_id", "need_title", "region", "achievement_ids",
                                             "best_strength"])
    if len(invitations):
        invitations = invitations.groupby("enterprise", as_index=False, sort=True).agg(
            need_ids=("need_id", ";".join), need_titles=("need_title", "；".join), region=("region", "first"),
            achievement_ids=("achievement_ids", lambda s: ";".join(dict.fromkeys(";".join(s).split(";")))),
            best_strength=("best_strength", "max"))
    return shortlist, invitations
