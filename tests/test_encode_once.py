"""Records that share a dense text are encoded once, with the vectors of encoding each of them."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CSL, csl_records

from qcy_match import MatchEngine

pytestmark = pytest.mark.skipif(not CSL.is_file(), reason="CSL data not found")


def test_shared_titles_are_encoded_once(monkeypatch):
    recs = csl_records().iloc[:120].reset_index(drop=True)
    recs.loc[40:79, "title"] = recs["title"].iloc[:40].to_numpy()  # 40 records share their title with another
    engine = MatchEngine()
    seen: list[str] = []
    encode = engine._encode_all

    def spy(texts, tokens, show_progress, desc):  # type: ignore[no-untyped-def]
        seen.extend(texts)
        return encode(texts, tokens, show_progress, desc)

    monkeypatch.setattr(engine, "_encode_all", spy)
    engine.index(recs)
    assert len(seen) == len(set(seen)) == engine.records_["title"].nunique() == 80
    v = engine.vectors()
    np.testing.assert_array_equal(v[40:80], v[:40])
    titles = engine._titles(engine.records_)
    each = engine.encoder_.encode(titles, [[] for _ in titles])
    np.testing.assert_allclose(v, each, atol=1e-6)
