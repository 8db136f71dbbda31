"""Live updates: after any sequence of adds, upserts and deletes the engine answers as a fresh build would."""

from __future__ import annotations

from pathlib import Path

import bm25s
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qcy_match import EngineConfig, MatchEngine, load_records
from qcy_match.index.sparse import SparseIndex

CORPORA = Path(__file__).parent.parent / "corpora"
TOL = 1e-5  # float32 rounding: vectors encoded in different batches differ in the last bits


@pytest.fixture(scope="module")
def pool() -> pd.DataFrame:
    """36 demo achievements across industries: the records that operations draw from."""
    recs, rejects = load_records(CORPORA / "achievements.jsonl")
    assert rejects == []
    return recs.iloc[::9].reset_index(drop=True)


@pytest.fixture(scope="module")
def queries() -> pd.DataFrame:
    recs, _ = load_records(CORPORA / "needs.jsonl")
    return recs.iloc[::22].reset_index(drop=True)


@pytest.fixture(scope="module")
def encoder(pool):
    """LSA fitted once on the whole pool: a corpus-fitted encoder stays as fitted when records change."""
    return MatchEngine(EngineConfig(encoder="lsa")).index(pool).encoder_


def variant(rec: pd.Series) -> pd.Series:
    out = rec.copy()
    out["title"] = rec["title"] + " 改进型"
    out["keywords"] = list(rec["keywords"])[:1]
    return out


def scores_by_id(m, row: int) -> dict[str, float]:
    return {str(i): float(s) for i, s in zip(m.ids[row], m.scores[row], strict=True) if i is not None}


def assert_same_as_fresh(engine: MatchEngine, encoder, queries: pd.DataFrame, kind: str) -> None:
    """Every live record's fused score, and the ranking, equal those of a fresh build over the same records."""
    fresh = MatchEngine(engine.config).index(engine.records_, encoder=encoder)
    n = len(engine)
    assert len(fresh) == n
    for filters in (None, {"region": "关中"}):
        got = engine.match(queries, k=n, filters=filters, explain_matches=False)
        want = fresh.match(queries, k=n, filters=filters, explain_matches=False)
        for r in range(len(queries)):
            a, b = scores_by_id(got, r), scores_by_id(want, r)
            assert a.keys() == b.keys()
            for key in a:
                assert a[key] == pytest.approx(b[key], abs=TOL), key
            ranked = [s for s in got.scores[r] if s == s]
            assert ranked == sorted(ranked, reverse=True)


OPS = st.lists(st.one_of(
    st.tuples(st.just("upsert"), st.lists(st.integers(0, 35), min_size=1, max_size=6), st.booleans()),
    st.tuples(st.just("delete"), st.lists(st.integers(0, 35), min_size=1, max_size=6), st.just(False)),
    st.tuples(st.just("compact"), st.just([]), st.just(False)),
), min_size=1, max_size=6)


@pytest.mark.parametrize(("kind", "storage"), [("numpy", "float32"), ("flat", "float32"), ("hnsw", "float32"),
                                               ("ivf", "float32"), ("flat", "float16"), ("hnsw", "float16"),
                                               ("hnsw", "sq8")])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, start=st.integers(2, 30))
def test_property_updates_equal_fresh_build(kind, storage, ops, start, pool, queries, encoder):
    config = EngineConfig(encoder="lsa", index=kind, index_params={"storage": storage})
    engine = MatchEngine(config).index(pool.iloc[:start], encoder=encoder)
    expected = {str(i): r for i, r in zip(pool["id"][:start], range(start), strict=True)}
    for op, picks, changed in ops:
        rows = pool.iloc[sorted(set(picks))]
        if op == "upsert":
            batch = pd.DataFrame([variant(r) if changed else r for _, r in rows.iterrows()])
            res = engine.upsert(batch)
            assert sorted(res.added + res.replaced) == sorted(batch["id"])
            expected.update({str(i): 0 for i in batch["id"]})
        elif op == "delete":
            if len(expected) <= len(set(rows["id"])):
                continue  # keep at least one record
            res = engine.delete(rows["id"])
            assert sorted(res.deleted + res.missing) == sorted(set(rows["id"]))
            for i in rows["id"]:
                expected.pop(str(i), None)
        else:
            engine.compact()
        assert sorted(engine.records_["id"]) == sorted(expected)
    assert_same_as_fresh(engine, encoder, queries, kind)
    engine.compact()
    assert_same_as_fresh(engine, encoder, queries, kind)


def test_deleted_record_is_never_returned_and_upsert_replaces(pool, queries, encoder):
    engine = MatchEngine(EngineConfig(encoder="lsa")).index(pool, encoder=encoder)
    top = engine.match(queries.iloc[:1], k=1, explain_matches=False).ids[0, 0]
    assert engine.delete([top, "no-such-id"]).missing == ["no-such-id"]
    m = engine.match(queries, k=len(engine), explain_matches=False)
    assert top not in set(m.ids.ravel())
    assert len(engine) == len(pool) - 1
    # Upserting it back with a new title: found again, with the new title, once.
    rec = variant(pool[pool["id"] == top].iloc[0])
    assert engine.upsert(pd.DataFrame([rec])).added == [top]
    assert engine.upsert(pd.DataFrame([rec])).replaced == [top]
    assert engine.records_["id"].tolist().count(top) == 1
    assert engine.records_.set_index("id").loc[top, "title"].endswith("改进型")
    res = engine.add(pd.DataFrame([rec]))
    assert res.added == [] and res.rejected[0].field == "id" and "already indexed" in res.rejected[0].reason


def test_new_words_are_searchable_before_any_merge(pool, encoder):
    engine = MatchEngine(EngineConfig(encoder="lsa")).index(pool, encoder=encoder)
    engine.add([{"id": "NEW1", "title": "量子点钙钛矿叠层光伏组件", "description": "钙钛矿 量子点 叠层 组件效率"}])
    assert len(engine.dense_.delta_) == 1  # still in the delta segment
    m = engine.match(["钙钛矿量子点光伏组件"], k=1)
    assert m.ids[0, 0] == "NEW1"
    assert m.explanations[0][0]["shared_keywords"]


@pytest.mark.parametrize("storage", ["float32", "sq8"])
def test_save_merges_and_load_equals(tmp_path, pool, queries, encoder, storage):
    config = EngineConfig(encoder="lsa", index="hnsw", index_params={"storage": storage})
    engine = MatchEngine(config).index(pool.iloc[:20], encoder=encoder)
    engine.upsert(pool.iloc[15:30])
    engine.delete(pool["id"][:3])
    before = engine.match(queries, k=8, explain_matches=False)
    loaded = MatchEngine.load(engine.save(tmp_path / "idx"))
    assert len(loaded.dense_.delta_) == 0 and loaded.dense_.alive_ is None
    assert loaded.dense_.storage_ == storage
    after = loaded.match(queries, k=8, explain_matches=False)
    assert (after.ids == before.ids).all()
    np.testing.assert_allclose(after.scores, before.scores, atol=TOL)


def test_automatic_merge_when_the_delta_grows(monkeypatch, pool, encoder):
    from qcy_match.match import snapshot

    monkeypatch.setattr(snapshot, "COMPACT_MIN", 4)
    monkeypatch.setattr(snapshot, "COMPACT_FRACTION", 0.0)
    engine = MatchEngine(EngineConfig(encoder="lsa")).index(pool.iloc[:10], encoder=encoder)
    engine.add(pool.iloc[10:13])
    assert len(engine.dense_.delta_) == 3
    engine.add(pool.iloc[13:15])  # 5 > 4: merged
    assert len(engine.dense_.delta_) == 0 and len(engine.sparse_.delta_) == 0
    assert engine.records_["id"].tolist() == pool["id"][:15].tolist()


# ---- BM25 segments against bm25s and against fresh builds -----------------------------------------------------
DOCS = [["钛合金", "锻件", "钛合金"], ["锂电池", "回收"], ["钛合金", "焊接"], [], ["乳制品", "发酵", "乳制品", "菌种"],
        ["锂电池", "正极", "材料", "回收", "工艺"], ["焊接", "机器人"]]
TERMS = sorted({t for d in DOCS for t in d} | {"未知"})


def test_bm25_equals_bm25s_lucene():
    ours = SparseIndex(k1=1.2, b=0.6).fit(DOCS)
    ref = bm25s.BM25(k1=1.2, b=0.6, method="lucene")
    ref.index(DOCS, show_progress=False)
    for q in (["钛合金"], ["锂电池", "回收"], ["焊接", "钛合金", "焊接"], ["乳制品"]):
        ids = [ref.vocab_dict[t] for t in q if t in ref.vocab_dict]
        np.testing.assert_allclose(ours.scores(q), ref.get_scores_from_ids(ids), rtol=1e-5, atol=1e-6)


@settings(max_examples=80, deadline=None)
@given(ops=st.lists(st.tuples(st.booleans(), st.lists(st.integers(0, len(DOCS) - 1), min_size=1, max_size=3)),
                    min_size=1, max_size=6),
       query=st.lists(st.sampled_from(TERMS), min_size=1, max_size=4))
def test_property_bm25_segments_equal_fresh(ops, query):
    sp = SparseIndex().fit(DOCS[:3])
    live: list[list[str]] = list(DOCS[:3])
    for is_add, picks in ops:
        if is_add:
            docs = [DOCS[p] for p in picks]
            sp = sp.updated(add=docs)
            live += docs
        else:
            alive = np.flatnonzero(sp.alive_) if sp.alive_ is not None else np.arange(len(sp))
            gone = sorted({p % len(alive) for p in picks}) if len(alive) else []
            sp = sp.updated(delete=alive[gone])
            live = [d for i, d in enumerate(live) if i not in set(gone)]
    assert sp.n_docs_ == len(live)
    alive = np.flatnonzero(sp.alive_) if sp.alive_ is not None else np.arange(len(sp))
    got = sp.scores(query)[alive]
    if live:
        np.testing.assert_allclose(got, SparseIndex().fit(live).scores(query), rtol=1e-6, atol=1e-7)
        assert dict(sp.idf_) == pytest.approx(dict(SparseIndex().fit(live).idf_))


def test_vectors_follow_live_records_after_updates(pool, encoder):
    engine = MatchEngine(EngineConfig(encoder="lsa")).index(pool.iloc[:20], encoder=encoder)
    engine.add(pool.iloc[20:30])
    engine.delete([pool.iloc[3]["id"], pool.iloc[25]["id"]])
    vectors = engine.vectors()
    assert len(vectors) == len(engine.records_) == 28
    fresh = MatchEngine(EngineConfig(encoder="lsa")).index(engine.records_, encoder=encoder)
    np.testing.assert_allclose(vectors, fresh.vectors(), atol=TOL)


def test_delete_normalises_ids_like_records(tmp_path):
    from qcy_match import EngineConfig, MatchEngine

    recs = [{"id": "123", "title": "钛合金薄壁件铣削"}, {"id": "124", "title": "锂电池正极材料"}]
    engine = MatchEngine(EngineConfig(encoder="lsa")).index(recs)
    res = engine.delete(["１２３\u200b ", "999"])
    assert res.deleted == ["123"] and res.missing == ["999"]
    assert engine.records_["id"].tolist() == ["124"]
