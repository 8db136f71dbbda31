"""Token lists as term ids (index.terms): the same lists as the tokenizer's, shared with BM25, saved as mapped
arrays that are checked on load, and kept through updates, compaction and sharding.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import CSL, csl_records

from qcy_match import EngineConfig, MatchEngine
from qcy_match.errors import IndexFormatError
from qcy_match.index import sparse
from qcy_match.index.mapped import within
from qcy_match.index.sparse import SparseIndex
from qcy_match.index.terms import TermLists
from qcy_match.persistence import LAYOUT

pytestmark = pytest.mark.skipif(not CSL.is_file(), reason="CSL data not found")


@pytest.fixture(scope="module")
def records():
    return csl_records()


@pytest.fixture(scope="module")
def engine(records) -> MatchEngine:
    return MatchEngine(EngineConfig(encoder="lsa", index="hnsw", index_params={"partition_min": 150})).index(records)


@pytest.fixture(scope="module")
def lists(engine, records) -> list[list[str]]:
    """The tokenizer's lists of the indexed records' matching texts, cut one by one."""
    return [engine.tokenizer_.tokenize(t, normalized=True) for t in engine._texts(engine.records_)]


def test_term_ids_read_back_as_the_token_lists(lists):
    terms = TermLists.of(lists)
    assert len(terms) == len(lists) and terms == lists
    assert terms[-1] == lists[-1] and terms[3:6] == lists[3:6]
    assert terms.lengths().tolist() == [len(t) for t in lists]
    assert terms.ids.dtype == np.int32 and len(terms.vocab) == len({t for doc in lists for t in doc})
    with pytest.raises(IndexError):
        terms[len(lists)]


def test_select_extend_and_renumber_equal_list_operations(lists):
    terms = TermLists.of(lists[:1500])
    keep = np.arange(1500) % 3 != 0
    changed = terms.select(keep).extended(lists[1500:])
    want = [t for t, k in zip(lists[:1500], keep, strict=True) if k] + lists[1500:]
    assert changed == want and changed.vocab is terms.vocab
    assert terms.select(np.ones(1500, bool)) is terms
    fresh = changed.renumbered()
    assert fresh == want
    # The vocabulary of a fresh BM25 build over the same lists, term for term and id for id.
    assert fresh.vocab == SparseIndex().fit(want).vocab_
    assert len(fresh.vocab) < len(terms.vocab)  # the dropped records' own terms are gone


def test_engine_shares_one_vocabulary_between_tokens_and_bm25(engine, lists):
    assert engine.tokens_.vocab is engine.sparse_.vocab_
    assert engine.tokens_ == lists


def test_saved_terms_and_postings_are_mapped_and_equal(tmp_path, engine):
    path = engine.save(tmp_path / "idx")
    manifest = json.loads((path / LAYOUT.manifest).read_text(encoding="utf-8"))
    assert {LAYOUT.term_ids, LAYOUT.term_offsets} <= set(manifest["files"])
    loaded = MatchEngine.load(path)
    assert isinstance(loaded.tokens_.ids, np.memmap) and isinstance(loaded.sparse_.main_.docs, np.memmap)
    assert loaded.tokens_ == engine.tokens_ and loaded.tokens_.vocab is loaded.sparse_.vocab_
    a, b = engine.match(["稀土永磁材料的制备工艺"], k=5), loaded.match(["稀土永磁材料的制备工艺"], k=5)
    assert np.array_equal(a.ids, b.ids) and a.explanations == b.explanations
    assert a.explanations[0][0]["shared_keywords"]


@pytest.mark.parametrize("damage", ["id beyond vocabulary", "negative id", "offsets short", "offsets decrease"])
def test_damaged_term_files_refuse_to_load(tmp_path, engine, damage):
    path = engine.save(tmp_path / "idx")
    ids = np.load(path / LAYOUT.term_ids)
    offsets = np.load(path / LAYOUT.term_offsets)
    if damage == "id beyond vocabulary":
        ids[7] = len(engine.sparse_.vocab_)
    elif damage == "negative id":
        ids[-1] = -1
    elif damage == "offsets short":
        offsets = offsets[:-1]
    else:
        offsets[5], offsets[6] = offsets[6], offsets[5]
    np.save(path / LAYOUT.term_ids, ids)
    np.save(path / LAYOUT.term_offsets, offsets)
    with pytest.raises(IndexFormatError, match="term_(ids|offsets)"):
        MatchEngine.load(path, verify=False)


def test_updates_and_compaction_keep_tokens_and_vocabulary_in_step(engine, records, lists):
    e = MatchEngine(engine.config).index(records.iloc[:1200])
    e.delete(records["id"].iloc[:300].tolist())
    e.add(records.iloc[1200:1400])
    want = lists[300:1400]
    assert e.tokens_ == want and e.tokens_.vocab is e.sparse_.vocab_
    e.compact()
    fresh = MatchEngine(engine.config).index(records.iloc[300:1400])
    assert e.tokens_ == want and e.sparse_.vocab_ == fresh.sparse_.vocab_


def test_sharded_index_with_partition_graphs_saves_and_loads(tmp_path, engine, records):
    # Each shard holds partition graphs of its own: they are per-shard files, not shared ones like the encoder's.
    path = engine.save(tmp_path / "sharded", shards=2)
    loaded = MatchEngine.load(path)
    # The shards list their records shard by shard: the same lists, in another order.
    assert sorted(map(tuple, loaded.tokens_)) == sorted(map(tuple, engine.tokens_))
    assert any(LAYOUT.is_partition_graph(p.name) for p in (path / "shard-00000").iterdir())


def test_range_check_leaves_a_mapped_array_unread(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(1 << 20, dtype=np.int32))
    a = np.load(tmp_path / "a.npy", mmap_mode="r")
    assert within(a, 0, 1 << 20) and not within(a, 0, (1 << 20) - 1) and not within(a, 1, 1 << 20)
    assert within(a[:0], 5, 6)


def test_bm25_postings_built_in_blocks_equal_one_block(lists, monkeypatch):
    one = SparseIndex().fit(lists).main_
    monkeypatch.setattr(sparse, "BUILD_BLOCK", 97)  # 21 blocks, the last one short
    blocks = SparseIndex().fit(lists).main_
    for name in ("indptr", "docs", "tf", "lengths"):
        np.testing.assert_array_equal(getattr(blocks, name), getattr(one, name))
    assert one.tf.sum() == sum(map(len, lists)) and one.lengths.tolist() == [len(t) for t in lists]
