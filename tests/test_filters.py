"""Filter masks from the grouped index agree with the rule applied record by record, on the demo corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qcy_match import load_records
from qcy_match.errors import FilterError
from qcy_match.match.filters import FilterIndex, parse
from qcy_match.taxonomy import chains, regions

CORPORA = Path(__file__).parent.parent / "corpora"


@pytest.fixture(scope="module")
def recs():
    a, _ = load_records(CORPORA / "achievements.jsonl")
    return a


def naive(recs, filters):
    keep = np.ones(len(recs), bool)
    for key, values in filters.items():
        if key in ("industry", "chain", "tag"):
            pre = tuple(values) if key == "industry" else chains.expand(key, values)
            m = [any(c.startswith(pre) for c in codes) for codes in recs["industry"]]
        elif key == "region":
            m = [any(regions.region_matches(v, c, g, r) for v in values)
                 for c, g, r in zip(recs["region_city"], recs["region_group"], recs["region"], strict=True)]
        elif key in ("maturity", "transfer_mode"):
            m = [any(v in str(cell) for v in values) for cell in recs[key]]
        else:
            m = recs[key].astype(str).isin(values).tolist()
        keep &= np.array(m, bool)
    return keep


SPECS = ["industry=C39", "industry=C3973,C27", "industry=C", "chain=集成电路", "chain=航空,生物医药",
         "tag=strategic", "tag=digital", "region=关中", "region=西安,宝鸡", "region=陕南", "region=高新区",
         "maturity=中试", "transfer_mode=许可", "chain=数控机床"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(SPECS), min_size=1, max_size=3))
def test_grouped_masks_equal_record_by_record(recs, specs):
    filters = parse(specs)
    got = FilterIndex(recs).mask(filters)
    np.testing.assert_array_equal(got, naive(recs, filters))


def test_masks_are_cached_read_only_and_select_something(recs):
    index = FilterIndex(recs)
    f = parse(["chain=集成电路", "region=关中"])
    first = index.mask(f)
    assert index.mask(f) is first and not first.flags.writeable
    assert 0 < first.sum() < len(recs)
    assert index.mask({}) is None


def test_metadata_column_and_unknown_key(recs):
    index = FilterIndex(recs)
    owner = str(recs["owner"].iloc[0])
    np.testing.assert_array_equal(index.mask({"owner": [owner]}), (recs["owner"] == owner).to_numpy())
    with pytest.raises(FilterError, match="unknown filter 'colour'"):
        index.mask({"colour": ["red"]})
