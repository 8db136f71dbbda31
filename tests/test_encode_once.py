"""Records that share a dense text are encoded once, with the vectors of encoding each of them."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CSL, csl_records

from qcy_match import MatchEngine
from qcy_match.index.dense import DenseIndex

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
    assert engine.dense_.groups_.nodes == 80  # the dense index got the distinct vectors and their records
    titles = engine._titles(engine.records_)
    each = engine.encoder_.encode(titles, [[] for _ in titles])
    np.testing.assert_allclose(v, each, atol=1e-6)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_dense_index_over_distinct_rows_equals_one_over_every_record(kind):
    engine = MatchEngine().index(csl_records().iloc[:300])
    rows = np.asarray(engine.vectors()[:200])
    of = np.random.default_rng(3).integers(0, 200, 900)  # 900 records over 200 rows (some rows unused)
    labels = (of % 5).astype(np.int8)
    params = {"partition_min": 50} if kind == "hnsw" else {}
    spread = DenseIndex(kind, **params).fit(rows, labels=labels, rows_of=of)
    full = DenseIndex(kind, **params).fit(rows[of], labels=labels)
    np.testing.assert_array_equal(spread.groups_.node_of, full.groups_.node_of)
    np.testing.assert_array_equal(spread.vectors_, full.vectors_)
    q = rows[:20]
    keep = labels == 2
    for mask in (None, keep):
        a, b = spread.search(q, 10, mask), full.search(q, 10, mask)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1], atol=1e-6)
