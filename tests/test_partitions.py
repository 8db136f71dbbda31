"""Per-partition filtered search: results equal exact filtered search, saved and checked, kept across updates.

CSL papers get an industry code from their category (工学 → a manufacturing 大类 by discipline, 医学 → Q, 农学 → A …,
some with a second code from another 门类), and the thresholds are lowered so that partition graphs are built on
2,000 records, and a graph walk is made to look cheaper than a scan (as it is at scale; on 2,000 records scanning
is cheaper and is what the cost model picks), so that the walks are what is tested.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import csl_records

from qcy_match import EngineConfig, MatchEngine
from qcy_match.errors import IndexFormatError
from qcy_match.index.dense import DenseIndex, partitions
from qcy_match.index.topk import exact_top_k
from qcy_match.match.filters import FilterIndex, partition_labels
from qcy_match.persistence import LAYOUT

CSL = Path(os.environ.get("QCY_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "csl"
PARAMS = {"partition_min": 150, "exact_below": 40}
K = 10

pytestmark = pytest.mark.skipif(not (CSL / "csl_2000.jsonl").is_file(), reason="CSL data not found")


@pytest.fixture(autouse=True)
def walks(monkeypatch) -> list[int]:
    """Graph walks priced at one vector compared (so a partition with a graph is walked); counts the walks."""
    count: list[int] = []
    walk = partitions.Partitions._walk

    def counted(self, *args):  # type: ignore[no-untyped-def]
        count.append(1)
        return walk(self, *args)

    monkeypatch.setattr(partitions, "walk_cost", lambda ef, m, share: 1.0)
    monkeypatch.setattr(partitions.Partitions, "_walk", counted)
    return count


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return csl_records()


@pytest.fixture(scope="module")
def engine(records) -> MatchEngine:
    return MatchEngine(EngineConfig(encoder="lsa", index="hnsw", index_params=PARAMS)).index(records)


@pytest.fixture(scope="module")
def queries(engine, records) -> np.ndarray:
    titles = [" ".join(k) for k in records["keywords"].iloc[::25]]
    return engine.encoder_.encode(titles, [engine.tokenizer_.tokenize(t) for t in titles]).astype(np.float32)


def assert_exact(index: DenseIndex, q: np.ndarray, keep: np.ndarray) -> None:
    """Top-10 under ``keep`` holds ≥ 99 % of exact filtered search's (ties at the 10th score count), never short,
    with exact scores, best first.
    """
    got_i, got_s = index.search(q, K, keep)
    vectors = np.asarray(index._live_stored() if index.alive_ is None else
                         np.vstack([index.vectors_, index.delta_]), dtype=np.float32)
    _, want_s = exact_top_k(vectors, q, K, keep)
    want = min(K, int(keep.sum()))
    assert ((got_i >= 0).sum(axis=1) == want).all()
    assert keep[got_i[got_i >= 0]].all()
    if not want:
        return
    np.testing.assert_allclose(got_s[:, :want], np.einsum("qd,qkd->qk", q, vectors[got_i[:, :want]]), atol=1e-5)
    assert (np.diff(got_s[:, :want], axis=1) <= 1e-6).all()
    found = (got_s[:, :want] >= want_s[:, want - 1:want] - 1e-5).sum(axis=1)
    assert found.mean() / want >= 0.99, found.mean() / want


def test_labels_are_the_first_industry_code_section(records):
    labels = partition_labels(records)
    assert labels.dtype == np.int8 and len(labels) == len(records)
    assert labels[0] == ord(records["industry"][0][0][0]) - ord("A")
    assert partition_labels(pd.DataFrame({"industry": [[], ["Q"], ["C3973", "A"]]})).tolist() == [-1, 16, 2]


@pytest.mark.parametrize("industry", [["C"], ["A"], ["C39"], ["A", "Q"]])
def test_industry_filters_equal_exact_search_through_partitions(engine, queries, industry, walks):
    dense = engine.dense_
    parts = dense.partitions_
    assert parts is not None and ord("C") - ord("A") in parts.graphs  # the large partition has a graph
    keep = np.asarray(FilterIndex(engine.records_).mask({"industry": industry}))
    assert_exact(dense, queries, keep)
    assert walks  # through a partition's graph


def test_filters_across_partitions_stay_exact(engine, queries):
    dense = engine.dense_
    n = len(dense)
    rng = np.random.default_rng(1)
    region = np.asarray(FilterIndex(engine.records_).mask({"region": ["宝鸡"]}))
    c = np.asarray(FilterIndex(engine.records_).mask({"industry": ["C"]}))
    second = np.asarray(FilterIndex(engine.records_).mask({"industry": ["M"]}))  # a second code of every 7th
    few = np.zeros(n, bool)
    few[rng.choice(np.flatnonzero(c), 3, replace=False)] = True
    for keep in (region, second, c & (rng.random(n) < 0.5), c & (rng.random(n) < 0.05), few | (region & ~c),
                 rng.random(n) < 0.3):
        assert_exact(dense, queries, keep)
    got, _ = dense.search(queries, K, np.zeros(n, bool))
    assert (got == -1).all()


def test_save_load_round_trip_lists_and_checks_partition_files(engine, queries, tmp_path):
    engine.save(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / LAYOUT.manifest).read_text(encoding="utf-8"))
    graphs = sorted(f for f in manifest["files"] if f.startswith("partition_"))
    assert LAYOUT.partitions in manifest["files"] and len(graphs) == len(engine.dense_.partitions_.graphs)
    loaded = MatchEngine.load(tmp_path / "idx")
    keep = np.asarray(FilterIndex(engine.records_).mask({"industry": ["C", "A"]}))
    a, b = engine.dense_.search(queries, K, keep), loaded.dense_.search(queries, K, keep)
    np.testing.assert_array_equal(a[0], b[0])
    (tmp_path / "idx" / graphs[0]).unlink()
    with pytest.raises(IndexFormatError):
        MatchEngine.load(tmp_path / "idx")


def test_partition_files_that_disagree_are_refused(engine, tmp_path):
    engine.dense_.save(tmp_path)
    params, kind = engine.dense_.params(), engine.dense_.kind_
    labels = np.load(tmp_path / LAYOUT.partitions)
    np.save(tmp_path / LAYOUT.partitions, labels[:-1])
    with pytest.raises(ValueError, match="partitions"):
        DenseIndex.load(tmp_path, params, kind)
    moved = labels.copy()
    moved[labels == 2] = 0  # the graphs no longer match their partitions
    np.save(tmp_path / LAYOUT.partitions, moved)
    with pytest.raises(ValueError, match="disagree"):
        DenseIndex.load(tmp_path, params, kind)


def test_live_updates_search_the_delta_and_compaction_rebuilds_partitions(engine, records, queries):
    live = MatchEngine(engine.config).index(records.iloc[:1500], encoder=engine.encoder_)
    live.add(records.iloc[1500:])
    live.delete(records["id"].iloc[:200])
    assert len(live.dense_.delta_) == 500 and live.dense_.alive_ is not None
    filters = FilterIndex(live.records_)
    for industry in (["C"], ["A", "Q"]):
        keep = live._snap.positions(np.asarray(filters.mask({"industry": industry})))
        assert_exact(live.dense_, queries, keep)
    live.compact()
    assert live.dense_.partitions_ is not None
    assert (live.dense_.partitions_.labels == partition_labels(live.records_)).all()
    keep = np.asarray(FilterIndex(live.records_).mask({"industry": ["C"]}))
    assert_exact(live.dense_, queries, keep)
    m = live.match(records.iloc[1990:1995], k=5, filters={"industry": ["A"]}, explain_matches=False)
    assert all(all("A" in ",".join(live.records_["industry"][i]) for i in row if i >= 0) for row in m.indices)
