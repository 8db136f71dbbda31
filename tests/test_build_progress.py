"""Every build stage shows a progress bar when asked (issue 18, target 7), and none when not."""

from __future__ import annotations

import pytest

from qcy_match import EngineConfig, MatchEngine

STAGES = ("validate", "tokenise", "encode", "bm25", "index")


@pytest.mark.parametrize("shown", [True, False], ids=["progress", "quiet"])
def test_each_build_stage_has_a_bar(achievements, capsys, shown):
    engine = MatchEngine(EngineConfig(encoder="lsa")).index(achievements, show_progress=shown)
    err = capsys.readouterr().err
    for stage in STAGES:
        assert (f"{stage}:" in err) is shown, stage
    if shown:  # the tokenise bar counts records, all of them
        assert f"{len(engine)}/{len(engine)}" in err
