"""Sharded indexes: the same top-k as an unsharded index (corpus-wide BM25 statistics), live updates routed by id,
one shard opened alone, and a top manifest that vouches for every file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qcy_match import EngineConfig, IndexFormatError, MatchEngine
from qcy_match.cli import main
from qcy_match.index.shards import CorpusStats, shard_of
from qcy_match.match.sharded import ShardedEngine, shard_dir

SHARED = Path(os.environ.get("QCY_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
CSL = SHARED / "csl" / "csl_2000.jsonl"
pytestmark = pytest.mark.skipif(not CSL.is_file(), reason="CSL data not found (set QCY_SHARED_DATA)")
FILTERS = [None, {"category": ["工学"]}, {"category": ["农学", "医学"]}]


def csl_sides(n: int = 700) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CSL papers as achievements (title + abstract, category as metadata) and their keywords as needs."""
    papers = [json.loads(line) for line in CSL.open(encoding="utf-8")][:n]
    achievements = pd.DataFrame([{"id": p["id"], "title": p["title"], "description": p["abstract"],
                                  "category": p["category"]} for p in papers])
    needs = pd.DataFrame([{"id": "q" + p["id"], "title": " ".join(p["keywords"]), "description": p["title"],
                           "category": p["category"]} for p in papers[: n // 4]])
    return achievements, needs


def assert_same(a, b, atol: float = 1e-5, ranks: bool = True) -> None:
    """The same top lists up to exact ties: scores within ``atol`` rank by rank, the same ids at every rank
    outside a group of tied scores (a tied group inside the list holds the same ids; the group cut by k may not),
    and, in rows of identical ids, the same explanations (global IDF, each signal's score, and with ``ranks``
    each signal's rank but for 5 %: ranks differ where a signal's scores tie, e.g. texts with no dense signal).
    """
    assert a.query_ids == b.query_ids
    assert np.allclose(a.scores, b.scores, atol=atol, equal_nan=True)
    same_rows = same_ranks = total = 0
    for i in range(len(a.query_ids)):
        assert_same_list(a.ids[i], b.ids[i], a.scores[i])
        if (a.ids[i] == b.ids[i]).all():
            same_rows += 1
            for ea, eb in zip(a.explanations[i] if a.explanations else [], b.explanations[i], strict=True):
                signal_ranks = ("bm25_rank", "dense_rank")  # differ where a signal's scores tie
                assert {x: v for x, v in ea.items() if x not in signal_ranks} == \
                    {x: v for x, v in eb.items() if x not in signal_ranks}
                same_ranks += all(ea[r] == eb[r] for r in signal_ranks)
                total += 1
    assert same_rows >= 0.95 * len(a.query_ids) and (not ranks or same_ranks >= 0.95 * total)


def assert_same_list(ids_a, ids_b, scores) -> None:
    """One query's ids, best first, equal but for the order within groups of tied ``scores`` (a group cut by the
    end of the list may hold other ids).
    """
    s = np.nan_to_num(np.asarray(scores, np.float64), nan=-1.0)
    groups = np.concatenate([[0], np.cumsum(np.abs(np.diff(s)) > 1e-6)])
    for g in np.unique(groups):
        at = np.flatnonzero(groups == g)
        if at[-1] < len(s) - 1 or len(s) == 1:
            assert set(np.asarray(ids_a)[at]) == set(np.asarray(ids_b)[at]), (list(ids_a), list(ids_b))


@pytest.fixture(scope="module")
def sides():
    return csl_sides()


@pytest.fixture(scope="module")
def flat(sides):
    return MatchEngine(EngineConfig(encoder="lsa")).index(sides[0])


@pytest.fixture(scope="module")
def sharded(flat):
    return ShardedEngine.from_engine(flat, 3)


@pytest.mark.parametrize("filters", FILTERS)
def test_sharded_equals_unsharded(flat, sharded, sides, filters):
    assert [len(s) for s in sharded.shards_] != [len(flat)] and sum(len(s) for s in sharded.shards_) == len(flat)
    assert_same(flat.match(sides[1], k=10, filters=filters), sharded.match(sides[1], k=10, filters=filters))


def test_sharded_needs_side_and_built_directly(sides):
    """Direction achievements (an index of needs) and a sharded build from records give the unsharded results."""
    papers, keywords = sides  # the papers serve as needs here, their keywords as achievements
    flat = MatchEngine(EngineConfig(encoder="lsa")).index(papers, side="needs")
    direct = ShardedEngine(EngineConfig(encoder="lsa"), shards=3).index(papers, side="needs")
    for filters in FILTERS[:2]:
        a, b = flat.match(keywords, k=10, filters=filters), direct.match(keywords, k=10, filters=filters)
        assert a.query_side == b.query_side == "achievements"
        assert_same(a, b)


def test_shard_statistics_are_not_the_shards_own(sharded, flat):
    """A shard alone scores with its own statistics; the sharded engine injects the corpus-wide ones."""
    stats = sharded.stats_
    assert stats.n_docs == flat.sparse_.n_docs_ and stats.total_len == flat.sparse_.total_len_
    one = sharded.shards_[0].sparse_
    assert one.n_docs_ < stats.n_docs
    term = max(flat.sparse_.vocab_, key=lambda t: flat.sparse_.df_[flat.sparse_.vocab_[t]])
    assert stats.df[stats.terms[term]] == flat.sparse_.df_[flat.sparse_.vocab_[term]]
    assert sharded.stats_.df[stats.terms[term]] > one.df_[one.vocab_[term]]


def test_live_updates_route_by_id_and_keep_statistics_exact(sides, tmp_path):
    achievements, needs = sides
    base, extra = achievements.iloc[:600], achievements.iloc[600:]
    flat = MatchEngine(EngineConfig(encoder="lsa")).index(base)
    sharded = ShardedEngine.from_engine(flat, 3)
    changed = base.iloc[:40].assign(title=lambda d: d["title"] + " 石墨烯 储能")
    gone = list(base["id"].iloc[100:160]) + ["no-such-id"]
    for engine in (flat, sharded):
        res = engine.add(extra)
        assert sorted(res.added) == sorted(extra["id"]) and not res.rejected
        res = engine.upsert(changed)
        assert sorted(res.replaced) == sorted(changed["id"])
        res = engine.delete(gone)
        assert res.deleted == gone[:-1] and res.missing == ["no-such-id"]
        assert sorted(engine.add(extra.iloc[:3]).added) == []  # already indexed: rejected, not added
    where = shard_of(extra["id"], 3)
    for s, one in enumerate(sharded.shards_):
        assert set(extra["id"][where == s]) <= set(one.records_["id"])
        assert not set(gone) & set(one.records_["id"])
    # exact statistics: those of a fresh build over the live records
    fresh = CorpusStats.of([MatchEngine(EngineConfig(encoder="lsa")).index(one.records_).sparse_
                            for one in sharded.shards_])
    assert sharded.stats_.n_docs == fresh.n_docs == len(flat)
    assert sharded.stats_.total_len == pytest.approx(fresh.total_len)
    assert sharded.stats_.agrees_with([one.sparse_ for one in sharded.shards_])
    for filters in FILTERS[:2]:
        assert_same(flat.match(needs, k=10, filters=filters), sharded.match(needs, k=10, filters=filters))
    sharded.save(tmp_path / "ix")
    loaded = MatchEngine.load(tmp_path / "ix")
    assert isinstance(loaded, ShardedEngine) and len(loaded) == len(flat)
    assert_same(flat.match(needs, k=10), loaded.match(needs, k=10))


def test_save_load_and_one_shard_alone(sharded, flat, sides, tmp_path):
    path = tmp_path / "ix"
    flat.save(path, shards=3)
    loaded = MatchEngine.load(path)
    assert isinstance(loaded, ShardedEngine) and loaded.n_shards == 3
    assert_same(flat.match(sides[1], k=10), loaded.match(sides[1], k=10))
    # a worker opens one shard alone, with the corpus-wide statistics: its pools are the in-memory shard's
    _, shard, n = ShardedEngine.open_shard(path, 1)
    assert n == 3
    q_tokens, q_vecs = loaded._query_side(sides[1], loaded._texts(sides[1]))
    mine = loaded._state.shards[1].pools(loaded, q_tokens, q_vecs, 100, None)
    for a, b in zip(mine, shard.pools(loaded, q_tokens, q_vecs, 100, None), strict=True):
        assert (a.keys == b.keys).all() and np.allclose(a.sparse, b.sparse) and (a.sparse_rank == b.sparse_rank).all()
    # each shard is also an ordinary index directory
    alone = MatchEngine.load(path / shard_dir(1))
    assert not isinstance(alone, ShardedEngine) and len(alone) == len(sharded.shards_[1])


def test_top_manifest_checks_every_file(flat, tmp_path):
    path = flat.save(tmp_path / "ix", shards=3)
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["parts"]) == {shard_dir(i) for i in range(3)}
    assert all("records.parquet" in p["files"] for p in manifest["parts"].values())

    def refused(match: str) -> None:
        with pytest.raises(IndexFormatError, match=match):
            MatchEngine.load(path)

    data = path / shard_dir(2) / "bm25_data.npy"
    raw = data.read_bytes()
    data.write_bytes(raw[:-4] + bytes(4 - i for i in range(4)))  # same size, other bytes
    refused("shard-00002.*SHA-256")
    data.write_bytes(raw)
    MatchEngine.load(path)
    data.unlink()
    refused("bm25_data.npy.*missing")
    data.write_bytes(raw)
    shard_manifest = path / shard_dir(0) / "manifest.json"
    text = shard_manifest.read_text(encoding="utf-8")
    shard_manifest.write_text(text.replace('"side"', '"side" ', 1), encoding="utf-8")
    refused("shard-00000.*manifest")
    shard_manifest.write_text(text, encoding="utf-8")
    (path / "stats_df.npy").unlink()
    refused("stats_df.npy.*missing")


def test_cli_index_shards_and_match(sides, tmp_path):
    achievements, needs = sides
    a, n = tmp_path / "a.jsonl", tmp_path / "n.jsonl"
    for df, p in ((achievements, a), (needs, n)):
        df.to_json(p, orient="records", lines=True, force_ascii=False)
    assert main(["index", "--achievements", str(a), "--out", str(tmp_path / "flat"), "--encoder", "lsa"]) == 0
    assert main(["index", "--achievements", str(a), "--out", str(tmp_path / "sh"), "--encoder", "lsa",
                 "--shards", "3"]) == 0
    for ix in ("flat", "sh"):
        assert main(["match", "--index", str(tmp_path / ix), "--needs", str(n), "--filter", "category=工学",
                     "--out", str(tmp_path / f"{ix}.csv")]) == 0
    flat, sh = (pd.read_csv(tmp_path / f"{ix}.csv") for ix in ("flat", "sh"))
    assert len(flat) and (flat[["need_id", "rank"]] == sh[["need_id", "rank"]]).all().all()
    assert np.allclose(flat["score"], sh["score"], atol=1e-5)
    for (_, fa), (_, fb) in zip(flat.groupby("need_id"), sh.groupby("need_id"), strict=True):
        assert_same_list(fa["achievement_id"], fb["achievement_id"], fa["score"])
    assert (flat["achievement_id"] == sh["achievement_id"]).mean() > 0.95
    # a tampered shard is refused with the index-error status
    (tmp_path / "sh" / shard_dir(0) / "records.parquet").write_bytes(b"x")
    assert main(["match", "--index", str(tmp_path / "sh"), "--needs", str(n), "--out", str(tmp_path / "x.csv")]) == 3


def test_distributed_build_and_search_equal_the_local_ones(sides, tmp_path):
    """The pieces a cluster runs (qcy_match.match.distributed), called here in one process: a build shard by
    shard equals the local sharded build file for file, and the three search steps give the table of the
    unsharded index's match.
    """
    from qcy_match.ingest.records import from_any
    from qcy_match.match import distributed as dist

    achievements, needs = sides
    records = from_any(achievements)[0]
    config = EngineConfig(encoder="lsa")
    local = ShardedEngine(config, shards=3).index(records).save(tmp_path / "local")
    staging = tmp_path / "staging"
    staging.mkdir()
    dist.write_template(records, config, "achievements", staging)
    where = shard_of(records["id"], 3)
    for s in (2, 0, 1, 1):  # any order; a retried task replaces its earlier attempt
        dist.build_shard(staging, s, 3, records[where == s])
    built = dist.finish_build(staging, tmp_path / "built", 3)
    assert not staging.exists()
    top = [json.loads((p / "manifest.json").read_text(encoding="utf-8")) for p in (local, built)]
    assert top[0]["stats"] == top[1]["stats"]
    for name, part in top[0]["parts"].items():
        assert part["files"] == top[1]["parts"][name]["files"], name  # the same bytes, file for file
    assert top[0]["files"] == top[1]["files"]

    flat = MatchEngine(config).index(records)
    queries = from_any(needs)[0].assign(_row=lambda d: np.arange(len(d)) + 1)
    filters = {"category": ["工学"]}
    opened = [dist.open_shard(built, s) for s in range(3)]
    cands = pd.concat([dist.shard_pools(o, queries, queries["_row"], 10, filters) for o in opened])
    config_of, n_docs = dist.shard_config(built)
    assert config_of.encoder == "lsa" and n_docs == len(flat) and dist.shard_count(built) == 3
    hits = pd.concat([dist.fuse_pools(g, config_of, 10, n_docs) for _, g in cands.groupby("_row")])
    rows = pd.concat([dist.shard_rows(o, hits[hits["shard"] == o.index], queries, 10) for o in opened])
    order = {q: i for i, q in enumerate(queries["id"])}
    got = rows.sort_values(["need_id", "rank"], key=lambda c: c.map(order) if c.name == "need_id" else c)
    want = flat.match(queries, k=10, filters=filters).to_frame(queries, flat.records_)
    assert list(got.columns) == list(want.columns)
    assert (got["need_id"].to_numpy() == want["need_id"].to_numpy()).all()
    assert np.allclose(got["score"], want["score"], atol=1e-5)
    for (_, ga), (_, gb) in zip(want.groupby("need_id"), got.groupby("need_id"), strict=True):
        assert_same_list(ga["achievement_id"], gb["achievement_id"], ga["score"])
    same = got.reset_index(drop=True)["achievement_id"] == want["achievement_id"]
    assert same.mean() > 0.95
    cols = [c for c in want.columns if c not in ("bm25_rank", "dense_rank")]
    assert got.reset_index(drop=True)[same][cols].equals(want[same][cols])
