"""spark-match ([spark] extra): the same tables as `qcy-match match`, rejected rows, and a worker killed mid-job.

One small Spark session (local[2], tasks retried up to 3 times, no UI, 2 shuffle partitions) serves every test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from conftest import CSL, SPARK_MARKS, require_spark

from qcy_match import MatchEngine
from qcy_match.cli import main
from qcy_match.errors import FilterError

require_spark(module=True)

from qcy_match import spark as qs  # noqa: E402

pytestmark = SPARK_MARKS


@pytest.fixture(scope="module")
def csl(tmp_path_factory):
    """200 CSL papers as achievements (an LSA index) and 30 other papers' titles and keywords as needs, with three
    bad rows: no id, a title that is a JSON object, and an id used twice.
    """
    root = tmp_path_factory.mktemp("spark")
    papers = [json.loads(x) for x in CSL.open(encoding="utf-8")]
    (root / "achievements.jsonl").write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in papers[:200]),
                                             encoding="utf-8")
    needs = [{"id": f"N{i}", "title": p["title"], "keywords": p["keywords"], "category": p["category"]}
             for i, p in enumerate(papers[1000:1030])]
    needs[5] = {"id": "", "title": needs[5]["title"]}
    needs[9]["title"] = {"not": "text"}
    needs[20]["id"] = needs[3]["id"]
    needs[2]["title"] = "=" + needs[2]["title"]  # a spreadsheet formula: escaped in every CSV written
    (root / "needs.jsonl").write_text("".join(json.dumps(n, ensure_ascii=False) + "\n" for n in needs),
                                      encoding="utf-8")
    assert main(["index", "--achievements", str(root / "achievements.jsonl"), "--out", str(root / "index"),
                 "--encoder", "lsa"]) == 0
    return root


def _formula(root: Path) -> str:
    """The need title that starts with '='."""
    titles = [json.loads(x)["title"] for x in (root / "needs.jsonl").open(encoding="utf-8")]
    return next(t for t in titles if isinstance(t, str) and t.startswith("="))


def _parts(path: Path) -> pd.DataFrame:
    frames = [pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in sorted(path.glob("part-*.csv"))]
    return pd.concat([f for f in frames if len(f.columns)], ignore_index=True)


@pytest.mark.parametrize(("direction", "filters"), [("needs", ["category=工学"]),
                                                    ("achievements", ["category=工学,理学"])])
def test_spark_match_equals_match(spark, csl, tmp_path, direction, filters):
    flags = [f"--filter={f}" for f in filters]
    common = ["--index", str(csl / "index"), "--needs", str(csl / "needs.jsonl"), "--top-k", "10",
              "--direction", direction, *flags]
    assert main(["match", *common, "--out", str(tmp_path / "cli.csv")]) == 0
    assert main(["spark-match", *common, "--out", str(tmp_path / "spark"), "--master", "local[2]"]) == 0
    want = pd.read_csv(tmp_path / "cli.csv", keep_default_na=False, na_values=[""])
    got = _parts(tmp_path / "spark" / "matches")
    assert list(got.columns) == list(want.columns)
    query, found = got.columns[:2]
    assert set(got[query]) == set(want[query]) and len(want) > 100
    key = [query, "rank"]
    got, want = got.sort_values(key).reset_index(drop=True), want.sort_values(key).reset_index(drop=True)
    assert got[key + [found]].equals(want[key + [found]])
    assert (got["score"] - want["score"]).abs().max() < 1e-5
    text = [c for c in want.columns if want[c].dtype == object]
    assert got[text].fillna("").equals(want[text].fillna(""))
    if filters:
        values = filters[0].split("=")[1].split(",")
        assert got[f"{found.split('_')[0]}_category"].isin(values).all()
    assert (got == "'" + _formula(csl)).any().any()  # escaped as qcy-match match escapes it
    rejected = pd.read_csv(tmp_path / "spark" / "rejected.csv")
    cli_rejected = pd.read_csv(tmp_path / "cli.rejected.csv")
    assert rejected[["file", "row", "field", "reason"]].equals(cli_rejected[["file", "row", "field", "reason"]])
    assert sorted(rejected["row"]) == [6, 10, 21]


def test_worker_killed_mid_job_is_retried_without_duplicates(spark, csl, tmp_path):
    """The Python worker of partition 0 exits hard after matching its first batch, on the first attempt only."""
    flag = tmp_path / "died"
    needs = qs.read_needs(spark, csl / "needs.jsonl", partitions=2)
    job = qs.run(needs, csl / "index", k=5, partitions=2)

    def die_once(batches):
        from pyspark import TaskContext

        ctx = TaskContext.get()
        for batch in batches:
            yield batch
            if ctx.partitionId() == 0 and ctx.attemptNumber() == 0:
                flag.write_text("x")
                os._exit(1)

    got = job.matches.mapInPandas(die_once, job.matches.schema).toPandas()
    assert flag.exists()  # a worker did die
    usable = {f"N{i}" for i in range(30)} - {"N5", "N9", "N20"}  # no id, a bad title, row 21 repeats N3's id
    assert set(got["need_id"]) == usable
    assert not got.duplicated(["need_id", "rank"]).any()
    assert (got.groupby("need_id").size() == 5).all()
    assert [r.row for r in job.rejections()] == [6, 10, 21]


def test_spark_dataframe_in_and_bad_filter(spark, csl):
    rows = pd.read_json(csl / "needs.jsonl", lines=True).iloc[:4]
    rows["title"] = rows["title"].astype(str)
    df = spark.createDataFrame(rows[["id", "title", "category"]])
    got = qs.match(df, csl / "index", k=3).toPandas()
    engine = MatchEngine.load(csl / "index")
    want = engine.match(rows[["id", "title", "category"]], k=3)
    assert sorted(zip(got["need_id"], got["rank"], got["achievement_id"], strict=True)) == sorted(
        (q, r + 1, i) for q, row in zip(want.query_ids, want.ids, strict=True) for r, i in enumerate(row))
    assert list(got.columns[:4]) == ["need_id", "achievement_id", "rank", "score"]
    with pytest.raises(FilterError, match="unknown filter"):
        qs.run(df, csl / "index", filters=["no_such_field=1"])


def test_merge_top_k_keeps_each_needs_best(spark):
    rows = pd.DataFrame({"need_id": ["a", "a", "a", "b", "b"], "achievement_id": ["x", "y", "z", "x", "w"],
                         "rank": [1, 2, 1, 1, 1], "score": [0.9, 0.5, 0.7, 0.4, 0.4]})
    got = qs.merge_top_k(spark.createDataFrame(rows), k=2).toPandas().sort_values(["need_id", "rank"])
    assert got[["need_id", "achievement_id", "rank"]].values.tolist() == [
        ["a", "x", 1], ["a", "z", 2], ["b", "w", 1], ["b", "x", 2]]

