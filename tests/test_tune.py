"""qcy-match tune: judgments from every format with bad rows reported, cross-validated choice, saving only an
improvement under the index's writer lock, and the CLI."""

import json
from pathlib import Path

import pandas as pd
import pytest

from qcy_match import load_records, persistence
from qcy_match.cli import main
from qcy_match.errors import InputError
from qcy_match.match import tune
from qcy_match.match.engine import MatchEngine

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def needs():
    records, _ = load_records(ROOT / "corpora/needs.jsonl")
    return records


@pytest.fixture(scope="module")
def judgments(demo_analysis):
    """Broker judgments as a platform would log them: the demo's intended pairs accepted (graded), every other
    shown top-5 match rejected."""
    pairs = pd.read_csv(ROOT / "corpora/demo_pairs.csv", dtype=str)
    shown = demo_analysis.pairs[demo_analysis.pairs["rank"] <= 5][["need_id", "achievement_id"]]
    out = shown.merge(pairs, on=["need_id", "achievement_id"], how="outer")
    out["label"] = out["relevance"].fillna("0")
    return out[["need_id", "achievement_id", "label"]].reset_index(drop=True)


def test_read_judgments_from_every_format_with_bad_rows_reported(tmp_path, judgments):
    rows = judgments.head(6).copy()
    rows.loc[len(rows)] = ["N0001", "A0003", "maybe"]
    rows.loc[len(rows)] = ["", "A0003", "1"]
    rows.loc[len(rows)] = ["N0002", "A0004", "accepted"]
    rows.loc[len(rows)] = ["N0002", "A0005", "拒绝"]
    paths = {"csv": tmp_path / "j.csv", "xlsx": tmp_path / "j.xlsx", "jsonl": tmp_path / "j.jsonl"}
    rows.to_csv(paths["csv"], index=False)
    rows.to_excel(paths["xlsx"], index=False)
    rows.to_json(paths["jsonl"], orient="records", lines=True, force_ascii=False)
    for path in paths.values():
        got, rejects = tune.read_judgments(path)
        assert len(got) == 8
        assert [(r.row, r.field) for r in rejects] == [(7, "label"), (8, "need_id")], path
        assert rejects[0].file == str(path)
        grades = dict(zip(zip(got["need_id"], got["achievement_id"], strict=True), got["grade"], strict=True))
        assert grades[("N0002", "A0004")] == 1 and grades[("N0002", "A0005")] == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("need,achievement\nN1,A1\n", encoding="utf-8")
    with pytest.raises(InputError, match="label"):
        tune.read_judgments(bad)


def test_tune_reports_held_out_gain_and_refuses_to_save_without_one(demo_analysis, needs, judgments, tmp_path):
    engine = demo_analysis.engine
    j = judgments.assign(grade=judgments["label"].astype(int), row=range(2, len(judgments) + 2))
    extra = pd.DataFrame([{"need_id": "N9999", "achievement_id": "A0001", "grade": 1, "row": 999},
                          {"need_id": "N0001", "achievement_id": "A9999", "grade": 1, "row": 1000}])
    report, rejects = tune.tune(engine, needs, pd.concat([j, extra], ignore_index=True), folds=3,
                                weights=(0.2, 0.4, 0.6), depths=(100,), source="j.csv")
    assert [(r.row, r.field) for r in rejects] == [(999, "need_id"), (1000, "achievement_id")]
    assert report.needs == needs["id"].nunique() and report.folds == 3
    h = report.heldout
    assert 0 < h["ndcg_current"] <= 1 and 0 < h["mrr_chosen"] <= 1
    assert report.current == {"dense_weight": engine.config.dense_weight, "candidates": engine.config.candidates}
    # The held-out gain decides: improved_ranking is true exactly when the chosen setting won on held-out needs.
    assert report.improved_ranking == (h["ndcg_chosen"] > h["ndcg_current"] and report.chosen != report.current)
    assert report.improved_calibration == (h["logloss_refit"] < h["logloss_current"] - 1e-4)
    path = tmp_path / "ix"
    engine.save(path)
    before = persistence.version(path)
    nothing = tune.TuneReport(**{**report.to_dict(), "improved_ranking": False, "improved_calibration": False})
    assert not tune.save_tuned(path, nothing, before)
    assert persistence.version(path) == before
    forced = tune.TuneReport(**{**report.to_dict(), "chosen": {"dense_weight": 0.25, "candidates": 60},
                                "improved_ranking": True, "improved_calibration": True})
    assert tune.save_tuned(path, forced, before)
    loaded = MatchEngine.load(path)
    assert (loaded.config.dense_weight, loaded.config.candidates) == (0.25, 60)
    assert loaded.config.confidence == report.calibration
    with pytest.raises(InputError, match="changed"):
        tune.save_tuned(path, forced, before)


def test_cli_tune_dry_run_changes_nothing_and_reports(demo_analysis, judgments, tmp_path, capsys):
    path = tmp_path / "ix"
    demo_analysis.engine.save(path)
    before = persistence.version(path)
    jfile = tmp_path / "judged.csv"
    judgments.to_csv(jfile, index=False)
    out = tmp_path / "report.json"
    args = ["tune", "--index", str(path), "--judgments", str(jfile), "--needs", str(ROOT / "corpora/needs.jsonl"),
            "--folds", "3", "--weights", "0.3,0.5", "--depths", "100", "--report", str(out)]
    assert main([*args, "--dry-run"]) == 0
    assert persistence.version(path) == before
    report = json.loads(out.read_text(encoding="utf-8"))
    assert "held-out nDCG@10" in capsys.readouterr().out
    assert not report["saved"]
    assert (tmp_path / "judged.rejected.csv").is_file()
    assert main(args) == 0
    saved = json.loads(out.read_text(encoding="utf-8"))["saved"]
    assert (persistence.version(path) != before) == saved
    bad = tmp_path / "bad.csv"
    bad.write_text("need_id,achievement_id\nN0001,A0001\n", encoding="utf-8")
    assert main(["tune", "--index", str(path), "--judgments", str(bad), "--needs",
                 str(ROOT / "corpora/needs.jsonl"), "--dry-run"]) == 3
