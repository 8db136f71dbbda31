"""Demand analytics on the demo corpus: topics, gap tables, unused supply, roadshow shortlist."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qcy_match import load_records
from qcy_match.analytics import demand as an
from qcy_match.analytics import topics as tp
from qcy_match.errors import FilterError
from qcy_match.match import filters
from qcy_match.taxonomy import chains

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo():
    achievements, rej_a = load_records(ROOT / "corpora/achievements.jsonl")
    needs, rej_n = load_records(ROOT / "corpora/needs.jsonl")
    assert rej_a == rej_n == []
    return achievements, needs


@pytest.fixture(scope="module")
def analysis(demo_analysis):
    return demo_analysis


def test_chain_helper_prefers_own_column_and_longest_prefix():
    assert chains.chain_of_codes(["C1441"]) == "乳制品"  # 144 beats 14 (富硒食品)
    assert chains.record_chain({"industry": ["C3421"]}) == "数控机床"
    assert chains.record_chain({"industry": ["C3421"], "chain": "航空"}) == "航空"
    assert chains.record_chain({"industry": ["A0111"], "chain": ""}) == chains.OTHER
    assert chains.record_chain({"industry": "C1310"}) == "富硒食品"
    assert chains.record_chain({"industry": []}) == chains.OTHER


def test_pairs_are_the_engine_top_k_with_strength_in_unit_range(analysis, demo):
    _, needs = demo
    p = analysis.pairs
    assert set(p["need_id"]) == set(needs["id"])
    assert (p.groupby("need_id")["rank"].max() == 10).all()
    assert p["strength"].between(0, 1 + 1e-6).all()
    assert 0 < analysis.threshold < 1
    assert f"{analysis.threshold:.3f}" in analysis.threshold_rule


def test_strength_separates_intended_pairs(analysis):
    pairs = pd.read_csv(ROOT / "corpora/demo_pairs.csv")
    p = analysis.pairs.merge(pairs, on=["need_id", "achievement_id"], how="left")
    rel = p[p["relevance"] == 2]["strength"].median()
    other = p[p["relevance"].isna()]["strength"].median()
    assert rel > analysis.threshold > other


def test_confidence_separates_intended_pairs_and_most_needs_are_served(analysis):
    pairs = pd.read_csv(ROOT / "corpora/demo_pairs.csv")
    p = analysis.pairs.merge(pairs, on=["need_id", "achievement_id"], how="left")
    assert p["confidence"].between(0, 1).all()
    assert p[p["relevance"] == 2]["confidence"].median() > analysis.min_confidence > \
        p[p["relevance"].isna()]["confidence"].median()
    # The demo corpus has an intended partner for every need, so most needs must be matched well.
    assert analysis.best()["weak"].mean() < 0.2


def test_best_match_is_the_engines_top_match_and_weak_means_low_confidence(analysis):
    best = analysis.best()
    top = analysis.engine.match(analysis.needs.drop(columns=["industry_source", "chain_source"]), k=1,
                                explain_matches=False)
    assert list(best["best_achievement_id"]) == list(top.ids[:, 0])
    assert np.allclose(best["best_confidence"], top.confidence[:, 0], atol=1e-4)
    assert (best["weak"] == (best["best_confidence"] < analysis.min_confidence)).all()


def test_threshold_is_the_stated_quantile_of_all_pairs(analysis):
    sims = (analysis.need_matrix @ analysis.achievement_matrix.T).toarray().ravel()
    m = analysis.achievement_matrix.shape[0]
    assert analysis.threshold == pytest.approx(np.quantile(sims, 1 - 1 / m))


@pytest.mark.parametrize("dim", an.DIMENSIONS)
def test_gap_table_sums_match_inputs(analysis, demo, dim):
    achievements, needs = demo
    gap = an.gap_table(analysis, dim)
    assert gap["needs"].sum() == len(needs)
    assert gap["achievements"].sum() == len(achievements)
    weak = analysis.best()["weak"]
    assert gap["weak_needs"].sum() == weak.sum()
    listed = [i for cell in gap["weak_needs_listed"] for i in cell.split(";") if i]
    assert sorted(listed) == sorted(analysis.best()["need_id"][weak])
    assert gap[dim].is_unique


def test_region_gap_uses_the_three_groups(analysis):
    gap = an.gap_table(analysis, "region")
    assert set(gap["region"]) <= {"关中", "陕北", "陕南", "未知"}
    assert {"关中", "陕北", "陕南"} <= set(gap["region"])


def test_unmatched_needs_are_exactly_the_weak_ones(analysis):
    un = an.unmatched_needs(analysis)
    best = analysis.best()
    assert set(un["need_id"]) == set(best[best["weak"]]["need_id"])
    assert (un["best_confidence"] < analysis.min_confidence).all()
    assert "enterprise" in un and un["enterprise"].notna().all()


def test_unused_supply_never_in_a_top_k(analysis, demo):
    achievements, _ = demo
    un = an.unused_supply(analysis)
    assert not set(un["achievement_id"]) & set(analysis.pairs["achievement_id"])
    assert len(un) + analysis.pairs["achievement_id"].nunique() == len(achievements)
    assert un["best_need_id"].notna().all()
    by = an.unused_by(analysis, "industry")
    assert by["unused"].sum() == len(un) and by["achievements"].sum() == len(achievements)


def _coverage(sets, keys):
    return len(set().union(*(sets[k] for k in keys))) if keys else 0


@pytest.mark.parametrize("scope", [{}, {"chain": "数控机床"}, {"industry": "C39"}, {"region": "关中"}])
def test_shortlist_covers_at_least_the_top_n_by_individual_score(analysis, scope):
    # A looser strength so achievements serve several needs and the choice matters.
    loose = float(analysis.pairs["strength"].quantile(0.6))
    for slots in (1, 3, 5, 8):
        shortlist, invitations = an.roadshow(analysis, slots, min_strength=loose, **scope)
        sets = an.served_sets(analysis, min_strength=loose, **scope)
        weight = analysis.good_pairs(loose).groupby("achievement_id")["strength"].sum()
        top_n = sorted(sets, key=lambda a: (-len(sets[a]), -weight.get(a, 0.0), a))[:slots]
        chosen = shortlist["achievement_id"].tolist()
        assert len(chosen) <= slots and len(set(chosen)) == len(chosen)
        assert _coverage(sets, chosen) >= _coverage(sets, top_n)
        # Each need counted once: the running total is the size of the union.
        assert shortlist["covered_total"].iloc[-1] == _coverage(sets, chosen) == shortlist["new_needs"].sum()
        invited = {n for cell in invitations["need_ids"] for n in cell.split(";")}
        assert invited == set().union(*(sets[a] for a in chosen))


def test_shortlist_scope_restricts_both_sides(analysis):
    shortlist, invitations = an.roadshow(analysis, 3, chain="数控机床")
    scope = an.scope_filters(chain="数控机床")
    ach_in = set(analysis.achievements["id"][an.scope_mask(analysis.achievements, scope)])
    need_in = set(analysis.needs["id"][an.scope_mask(analysis.needs, scope)])
    assert len(shortlist) and set(shortlist["achievement_id"]) <= ach_in
    assert {n for cell in invitations["need_ids"] for n in cell.split(";")} <= need_in
    with pytest.raises(FilterError, match="unknown chain"):
        an.roadshow(analysis, 3, chain="不存在的链")
    with pytest.raises(FilterError, match="filter industry"):
        an.served_sets(analysis, industry="Z99")


@pytest.mark.parametrize("spec", [["chain=钢铁深加工"], ["chain=数控机床", "region=关中"], ["industry=C34"],
                                  ["region=陕北"], ["region=西安,宝鸡"], ["chain=航空,氢能", "industry=C"]])
def test_scope_is_the_search_filter(analysis, spec):
    parsed = filters.parse(spec)
    scope = an.scope_filters(**{k: ",".join(v) for k, v in parsed.items()})
    assert scope == parsed
    # The same records as the search's filter over the engine's index, on both sides.
    in_ach = an.scope_mask(analysis.achievements, scope)
    np.testing.assert_array_equal(in_ach, filters.mask(analysis.engine.records_, parsed))
    in_need = an.scope_mask(analysis.needs, scope)
    np.testing.assert_array_equal(in_need, filters.mask(analysis.needs, parsed))
    # A filtered search never returns an achievement outside the scope.
    found = analysis.engine.match(analysis.needs[in_need], k=10, filters=spec, explain_matches=False).ids
    assert {i for row in found for i in row if i is not None} <= set(analysis.achievements["id"][in_ach])
    loose = float(analysis.pairs["strength"].quantile(0.6))
    good = analysis.good_pairs(loose)
    good = good[good["need_id"].isin(analysis.needs["id"][in_need])
                & good["achievement_id"].isin(analysis.achievements["id"][in_ach])]
    expected = {a: set(g["need_id"]) for a, g in good.groupby("achievement_id")}
    assert an.served_sets(analysis, min_strength=loose, **{k: ",".join(v) for k, v in parsed.items()}) == expected


def test_chain_scope_means_the_chain_codes_not_the_assigned_group(analysis):
    # A scope used to take a chain as each record's one assigned group (group_of); it now means the GB/T codes the
    # chain covers, as in search. A0209 (steel pipe codes, own chain 氢能) is in a 钢铁深加工 roadshow;
    # N0114 (own chain 钢铁深加工, coded C3120 iron smelting, which the chain does not cover) is not.
    scope = an.scope_filters(chain="钢铁深加工")
    ach = analysis.achievements.assign(inside=an.scope_mask(analysis.achievements, scope)).set_index("id")
    nd = analysis.needs.assign(inside=an.scope_mask(analysis.needs, scope)).set_index("id")
    assert ach.at["A0209", "chain"] == "氢能" and ach.at["A0209", "inside"]
    assert nd.at["N0114", "chain"] == "钢铁深加工" and not nd.at["N0114", "inside"]
    # Grouping is unchanged: every record is still counted under exactly one chain.
    assert an.gap_table(analysis, "chain")["achievements"].sum() == len(analysis.achievements)


def test_greedy_beats_top_n_when_large_sets_overlap():
    sets = {"a": {1, 2, 3, 4}, "b": {1, 2, 3, 5}, "c": {6, 7, 8}}
    assert an.greedy_cover(sets, 2) == ["a", "c"]  # top-2 by size (a, b) covers 5, greedy 7


def test_greedy_falls_back_to_top_n_when_myopic():
    # After b, greedy breaks a three-way tie on the key (a), then can add one need; b+c+e covers 10.
    sets = {"a": {3, 4}, "b": {1, 2, 5, 6, 7, 9}, "c": {8, 4, 7}, "d": {8}, "e": {0, 3, 7}}
    chosen = an.greedy_cover(sets, 3)
    assert _coverage(sets, chosen) == 10 and sorted(chosen) == ["b", "c", "e"]


def test_topics_are_deterministic_with_a_seed(analysis):
    recs = analysis.achievements
    vecs = analysis.engine.vectors()
    texts = tp.label_texts(recs)
    t1 = tp.find_topics(vecs, texts, recs["title"].tolist(), seed=7)
    t2 = tp.find_topics(vecs, texts, recs["title"].tolist(), seed=7)
    assert t1.k == t2.k and np.array_equal(t1.labels, t2.labels)
    pd.testing.assert_frame_equal(t1.table, t2.table)
    assert t1.k in t1.silhouette and t1.silhouette[t1.k] == max(t1.silhouette.values())
    assert t1.table["size"].sum() == len(recs)
    assert t1.table["size"].is_monotonic_decreasing
    # c-TF-IDF labels must not be the boilerplate shared by every record
    assert not any("发明专利" in kw.split("、")[:1] for kw in t1.table["keywords"])


def test_topics_fixed_k_and_per_group_counts(analysis):
    recs = analysis.needs
    t = tp.find_topics(analysis.engine.vectors(recs), tp.label_texts(recs), recs["title"].tolist(), k=6, seed=0)
    assert t.k == 6 and t.silhouette == {}
    by = tp.topics_by(t.label_of(), an.group_of(recs, "region"), "region")
    assert by["records"].sum() == len(recs)
    assert set(by["topic"]) <= set(t.table["label"])


def test_c_tf_idf_prefers_distinctive_words():
    tokens = [["电池", "技术", "储能"], ["电池", "技术", "电池"], ["机床", "技术", "主轴"], ["机床", "技术"]]
    words = tp.c_tf_idf(tokens, np.array([0, 0, 1, 1]), n_words=1)
    assert words == {0: ["电池"], 1: ["机床"]}


def test_engine_vectors_are_read_only(analysis, demo):
    _, needs = demo
    v = analysis.engine.vectors()
    assert v.shape[0] == len(analysis.achievements) and not v.flags.writeable
    q = analysis.engine.vectors(needs.head(3))
    assert q.shape == (3, v.shape[1])
    assert np.allclose(np.linalg.norm(q, axis=1), 1, atol=1e-3)


@pytest.fixture(scope="module")
def uncoded(analysis, demo):
    """The demo needs as real, unlabelled inputs arrive: no industry codes and no chain column."""
    achievements, needs = demo
    stripped = needs.drop(columns=["chain"]).assign(industry=[[] for _ in range(len(needs))])
    return stripped, an.analyse(achievements, stripped, engine=analysis.engine)


def test_uncoded_needs_get_inferred_codes_and_chains_for_the_gap_tables(uncoded, demo):
    _, needs = demo
    _, result = uncoded
    nd = result.needs.set_index("id")
    assert (nd["industry_source"] == "inferred").mean() > 0.8
    assert (nd["chain_source"] == "inferred").mean() > 0.8
    for dim in ("industry", "chain"):
        gap = an.gap_table(result, dim)
        unknown = gap[gap[dim].isin([an.UNKNOWN["industry"], an.UNKNOWN["chain"]])]["needs"].sum()
        assert unknown < 0.5 * len(needs), gap
        assert gap["inferred"].sum() == (nd[f"{dim}_source"] == "inferred").sum()
    # The inferred 大类 agrees with the authors' codes for most needs (0.900 measured; allow for retraining noise).
    truth = needs.set_index("id")["industry"].map(lambda c: str(c[0])[:3])
    inferred = nd["industry"].map(lambda c: str(c[0])[:3] if len(c) else "")
    assert (inferred == truth.reindex(inferred.index)).mean() > 0.75
    assert "inferred" in result.industry_rule


def test_uncoded_report_shows_the_engines_own_top_match(uncoded, analysis):
    stripped, result = uncoded
    top = analysis.engine.match(stripped, k=1, explain_matches=False)
    best = result.best()
    assert list(best["best_achievement_id"]) == list(top.ids[:, 0])
    un = an.unmatched_needs(result)
    want = dict(zip(top.query_ids, top.ids[:, 0], strict=True))
    assert all(want[n] == a for n, a in zip(un["need_id"], un["best_achievement_id"], strict=True))
    assert set(un["industry_source"]) <= {"inferred", ""}
