"""export-milvus ([milvus] extra) against milvus-lite (a local .db file): the collection's filtered dense search is
the engine's exact dense search, its filter expressions keep the records the engine's filters keep, and its BM25
text search works where the server has it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qcy_match import EngineConfig, MatchEngine, load_records
from qcy_match.cli import main
from qcy_match.match import filters as filt

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from qcy_match import milvus  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1] / "corpora"
FILTERS = [["industry=C34"], ["industry=39,C27"], ["chain=数控机床"], ["tag=strategic"], ["region=关中"],
           ["region=西安"], ["region=碑林"], ["maturity=中试,产业化"], ["transfer_mode=许可"],
           ["owner=西安交通大学"], ["year=2024"], ["region=西安", "maturity=中试", "industry=C"]]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("milvus")
    records, rejects = load_records(CORPUS / "achievements.jsonl")
    assert rejects == []
    records["year"] = ["2024" if i % 3 else "2023" for i in range(len(records))]  # a metadata column to filter on
    MatchEngine(EngineConfig(encoder="lsa", index="flat")).index(records).save(root / "index")
    uri = str(root / "serve.db")
    assert main(["export-milvus", "--index", str(root / "index"), "--uri", uri, "--collection", "achievements",
                 "--vector-index", "FLAT"]) == 0
    engine = MatchEngine.load(root / "index")
    mc = milvus.client(uri)
    yield engine, mc, root
    mc.close()


def _needs():
    return [json.loads(line) for line in (CORPUS / "needs.jsonl").open(encoding="utf-8")][:6]


@pytest.mark.parametrize("filters", [[], *FILTERS[:4], FILTERS[-1]])
def test_dense_search_equals_engine_exact_dense_top10(exported, filters):
    engine, mc, _ = exported
    needs = _needs()
    ids, scores = milvus.dense_search(mc, "achievements", engine, needs, k=10, filters=filters)
    keep = filt.mask(engine.records_, filt.parse(filters))
    pos, want_scores = engine.dense_.search(engine.vectors(needs), 10, keep)
    want = np.where(pos >= 0, engine.records_["id"].to_numpy(dtype=object)[np.maximum(pos, 0)], None)
    assert (want != None).sum() > 0  # noqa: E711
    assert ids.tolist() == want.tolist()
    ok = pos >= 0
    assert np.allclose(scores[ok], want_scores[ok], atol=1e-5)


@pytest.mark.parametrize("filters", FILTERS)
def test_filter_expression_keeps_what_the_engine_keeps(exported, filters):
    engine, mc, _ = exported
    keep = filt.mask(engine.records_, filt.parse(filters))
    want = set(engine.records_["id"][keep])
    got = {r["id"] for r in mc.query("achievements", filter=milvus.filter_expression(filters), output_fields=["id"],
                                     limit=16_384)}
    assert 0 < len(want) < len(engine)
    assert got == want


def test_collection_holds_the_filter_fields(exported):
    engine, mc, _ = exported
    fields = {f["name"]: f for f in mc.describe_collection("achievements")["fields"]}
    assert {"id", "vector", "sector", "codes", "region", "region_city", "region_group", "maturity", "transfer_mode",
            "owner", "title"} <= set(fields)
    assert fields["sector"].get("is_partition_key")
    row = mc.get("achievements", ids=[engine.records_["id"].iat[0]], output_fields=["codes", "sector", "year"])[0]
    code = engine.records_["industry"].iat[0][0]
    assert code in row["codes"] and code[:3] in row["codes"] and row["sector"] == code[0] and row["year"] == "2023"


def test_bm25_text_search_where_supported(exported):
    engine, mc, root = exported
    fields = {f["name"] for f in mc.describe_collection("achievements")["fields"]}
    if "text_sparse" not in fields:
        res = milvus.export(root / "index", str(root / "probe.db"), "probe")
        pytest.skip(f"the server has no jieba analyzer or BM25 function: {res.bm25_reason}")
    titles = engine.records_["title"].iloc[:5].tolist()
    ids, _ = milvus.bm25_search(mc, "achievements", titles, k=3)
    assert ids[:, 0].tolist() == engine.records_["id"].iloc[:5].tolist()
    ids, _ = milvus.bm25_search(mc, "achievements", titles, k=3, filters=["maturity=实验室"])
    lab = set(engine.records_["id"][engine.records_["maturity"] == "实验室"])
    assert {i for i in ids.ravel() if i is not None} <= lab
