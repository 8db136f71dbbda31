"""The CLI end to end on the shipped demo corpus and on CSL records from ../shared/data."""

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from qcy_match.cli import main

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("QCY_SHARED_DATA", ROOT.parent / "shared" / "data"))


def test_demo_corpus_matches_intended_pairs(tmp_path):
    out = tmp_path / "demo.csv"
    assert main(["match", "--achievements", str(ROOT / "corpora/achievements.jsonl"),
                 "--needs", str(ROOT / "corpora/needs.jsonl"), "--top-k", "10", "--out", str(out)]) == 0
    table = pd.read_csv(out, encoding="utf-8-sig")
    needs = [json.loads(x) for x in (ROOT / "corpora/needs.jsonl").open(encoding="utf-8")]
    assert set(table["need_id"]) == {n["id"] for n in needs}
    assert (table.groupby("need_id")["rank"].max() == 10).all()
    pairs = pd.read_csv(ROOT / "corpora/demo_pairs.csv")
    intended = pairs[pairs.relevance == 2].groupby("need_id")["achievement_id"].apply(set)
    top10 = table.groupby("need_id")["achievement_id"].apply(set)
    hit = sum(bool(intended[n] & top10.get(n, set())) for n in intended.index) / len(intended)
    assert hit >= 0.9, hit
    assert pd.read_csv(tmp_path / "demo.rejected.csv").empty


def test_demo_corpus_reverse_direction_with_filter(tmp_path):
    out = tmp_path / "rev.jsonl"
    assert main(["match", "--achievements", str(ROOT / "corpora/achievements.jsonl"),
                 "--needs", str(ROOT / "corpora/needs.jsonl"), "--direction", "achievements",
                 "--filter", "region=陕北", "--top-k", "3", "--out", str(out)]) == 0
    rows = [json.loads(x) for x in out.open(encoding="utf-8")]
    assert rows and list(rows[0])[:2] == ["achievement_id", "need_id"]
    needs = {n["id"]: n for n in map(json.loads, (ROOT / "corpora/needs.jsonl").open(encoding="utf-8"))}
    assert all(any(c in needs[r["need_id"]]["region"] for c in ("榆林", "延安")) for r in rows)


@pytest.mark.skipif(not (SHARED / "csl" / "csl_2000.jsonl").is_file(), reason="CSL data not found")
def test_cli_on_csl_titles_find_their_papers(tmp_path):
    papers = [json.loads(x) for x in (SHARED / "csl" / "csl_2000.jsonl").open(encoding="utf-8")][:300]
    a, n = tmp_path / "A.jsonl", tmp_path / "N.jsonl"
    a.write_text("".join(json.dumps({"id": p["id"], "title": p["title"], "description": p["abstract"]},
                                    ensure_ascii=False) + "\n" for p in papers), encoding="utf-8")
    n.write_text("".join(json.dumps({"id": "q" + p["id"], "title": " ".join(p["keywords"]), "description": ""},
                                    ensure_ascii=False) + "\n" for p in papers[:60]), encoding="utf-8")
    assert main(["index", "--achievements", str(a), "--out", str(tmp_path / "idx")]) == 0
    assert main(["match", "--index", str(tmp_path / "idx"), "--needs", str(n), "--top-k", "5",
                 "--out", str(tmp_path / "o.csv")]) == 0
    top1 = pd.read_csv(tmp_path / "o.csv").query("rank == 1")
    assert (top1["need_id"].str[1:] == top1["achievement_id"]).mean() >= 0.95
