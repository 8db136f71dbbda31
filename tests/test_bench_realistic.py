"""The realistic-corpus generator (benchmarks/realistic.py) and the scale benchmark built on it
(benchmarks/scale_realistic.py): seeded, shaped like CSL, and runnable end to end at a tiny N."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks import realistic, scale_realistic
from benchmarks.datasets import default_data

pytestmark = pytest.mark.skipif(not (default_data() / "csl" / "csl_2000.jsonl").is_file(),
                                reason="CSL not found (set QCY_SHARED_DATA)")


def test_same_seed_same_records_and_another_seed_others() -> None:
    a = realistic.achievements(800, seed=7)
    pd.testing.assert_frame_equal(a, realistic.achievements(800, seed=7))
    b = realistic.achievements(800, seed=8)
    assert (a["description"] != b["description"]).mean() > 0.9
    n1, n2 = realistic.needs(60, 800, seed=7), realistic.needs(60, 800, seed=7)
    pd.testing.assert_frame_equal(n1, n2)
    assert a["id"].is_unique and n1["id"].is_unique


def test_description_lengths_follow_csl_abstracts() -> None:
    src = realistic.load_source()
    ref = src.abstract_chars
    gen = realistic.achievements(5000, seed=1)["description"].str.len().to_numpy()
    # Two-sample Kolmogorov–Smirnov distance between the length distributions.
    grid = np.union1d(ref, gen)
    ks = np.max(np.abs(np.searchsorted(np.sort(ref), grid, "right") / len(ref)
                       - np.searchsorted(np.sort(gen), grid, "right") / len(gen)))
    assert ks < 0.08, ks
    for q in (25, 50, 75):
        assert abs(np.percentile(gen, q) / np.percentile(ref, q) - 1) < 0.15
    # Needs are full-length: several sentences, at least as long as a typical abstract.
    needs = realistic.needs(300, 5000, seed=1)
    assert np.median(needs["description"].str.len()) >= np.median(ref)


def test_industries_follow_the_category_table_and_known_needs_point_at_their_source() -> None:
    a = realistic.achievements(3000, seed=2)
    codes = set(realistic.load_source().codes)
    for field, inds in zip(a["field"], a["industry"], strict=True):
        assert all(c in codes and c.startswith(realistic.SECTIONS[field]) for c in inds)
    needs = realistic.needs(200, 3000, seed=2)
    known = needs[needs["source"] != ""]
    assert len(known) == 100
    by_id = a.set_index("id")
    for _, n in known.iterrows():
        target = by_id.loc[n["source"]]
        assert n["industry"] == target["industry"]
        # At least one sentence of the source achievement is in the need.
        sentences = [s for s in realistic._split(target["description"]) if len(s) > 8]
        assert any(s in n["description"] for s in sentences)


def test_benchmark_runs_end_to_end_at_a_tiny_n(tmp_path: Path) -> None:
    rc = scale_realistic.main(["--ns", "2000", "--needs", "20", "--repeat", "10", "--encode-sample", "300",
                               "--out", str(tmp_path), "--stem", "t"])
    assert rc == 0
    rep = json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))
    (r,) = rep["results"]
    assert "error" not in r, (tmp_path / "t_2000.log").read_text()
    assert r["n"] == 2000
    for key in ("build", "raw_build", "loaded", "latency", "batch", "dense_recall_at_10", "known_source_hit_at_10"):
        assert key in r
    assert {"tokenise", "encode", "index"} <= set(r["build"]["stages_s"])
    assert set(r["latency"]) == {"unfiltered", "industry_filter", "raw_single", "unfiltered_beside_cpu_hog",
                                 "raw_single_beside_cpu_hog"}
    assert r["loaded"]["records"] == 2000 and r["loaded"]["open_s"] > 0
    assert r["build"]["peak_beyond_input_mib"] > 0
    assert r["batch"]["engine_needs_per_s"] > 0 and r["batch"]["raw_needs_per_s"] > 0
    assert 0.9 <= r["dense_recall_at_10"] <= 1.0  # a flat index at this size: exact
    # Known-source needs share sentences with their target, so the engine finds most of them.
    assert r["known_source_hit_at_10"]["needs"] == 10 and r["known_source_hit_at_10"]["engine"] >= 0.7
    md = (tmp_path / "t.md").read_text(encoding="utf-8")
    assert "| 2,000 |" in md and "÷" in md
    # Growth from one size to the next is the ratio of each figure (here of a copy at twice the latency).
    bigger = json.loads(json.dumps(r))
    bigger["n"] = 20000
    for v in bigger["latency"].values():
        v["p50_ms"] *= 2
    bigger["batch"]["engine_needs_per_s"] /= 4
    (g,) = scale_realistic.growth([r, bigger])
    assert g["records"] == 10 and g["filtered_p50"] == pytest.approx(2) and g["batch_fall"] == pytest.approx(4)
