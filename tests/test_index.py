"""Dense index (numpy/flat/HNSW/IVF), top-k selection, BM25 sparse index and score fusion."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qcy_match.index.dense import BACKENDS, DenseIndex
from qcy_match.index.sparse import SparseIndex
from qcy_match.index.topk import top_k
from qcy_match.match.fusion import fuse, minmax, ranks

KINDS = ["numpy", "flat", "hnsw", "ivf"]
N, D, K = 3000, 32, 10


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def vectors() -> tuple[np.ndarray, np.ndarray]:
    """Seeded random unit vectors and queries."""
    rng = np.random.default_rng(0)
    return unit(rng.standard_normal((N, D))), unit(rng.standard_normal((25, D)))


@pytest.fixture(scope="module")
def clustered() -> tuple[np.ndarray, np.ndarray]:
    """Seeded clustered unit vectors (embeddings are clustered; uniform noise in 32-d is a worst case for IVF)."""
    rng = np.random.default_rng(1)
    centers = rng.standard_normal((40, D))
    x = centers[rng.integers(0, 40, N)] + 0.3 * rng.standard_normal((N, D))
    q = centers[rng.integers(0, 40, 40)] + 0.3 * rng.standard_normal((40, D))
    return unit(x), unit(q)


@pytest.fixture(scope="module")
def built(vectors) -> dict[tuple[str, int], DenseIndex]:
    """Each kind with the default exact_below (strict filters answered exactly) and with exact_below=0 (FAISS
    answers every filtered query through its ID selector)."""
    x, _ = vectors
    return {(kind, eb): DenseIndex(kind, exact_below=eb).fit(x) for kind in KINDS for eb in (50_000, 0)}


def brute(x: np.ndarray, q: np.ndarray, k: int, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Reference top-k by full sort."""
    s = q @ x.T
    if mask is not None:
        s = np.where(mask, s, -np.inf)
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(s, order, axis=1)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


# ---- DenseIndex ------------------------------------------------------------------------------------------------
def test_numpy_matches_brute_force(vectors, built):
    x, q = vectors
    idx, scores = built[("numpy", 50_000)].search(q, K)
    ref_idx, ref_scores = brute(x, q, K)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-6)


def test_flat_equals_numpy_exact(vectors, built):
    _, q = vectors
    ni, ns = built[("numpy", 50_000)].search(q, K)
    fi, fs = built[("flat", 50_000)].search(q, K)
    np.testing.assert_array_equal(fi, ni)
    np.testing.assert_allclose(fs, ns, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_recall_is_high(clustered, kind):
    x, q = clustered
    truth, _ = brute(x, q, K)
    idx, scores = DenseIndex(kind).fit(x).search(q, K)
    assert recall(idx, truth) >= 0.95
    # Scores are the true inner products of the returned vectors.
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", q, x[idx]), rtol=1e-4, atol=1e-5)


def test_hnsw_recall_on_uniform_vectors(vectors, built):
    x, q = vectors
    truth, _ = brute(x, q, K)
    assert recall(built[("hnsw", 50_000)].search(q, K)[0], truth) >= 0.9


def _mask(kept: float | int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n_keep = kept if isinstance(kept, int) else max(1, round(N * kept))
    m = np.zeros(N, dtype=bool)
    m[rng.choice(N, n_keep, replace=False)] = True
    return m


MASKS = [pytest.param(0.5, id="50%"), pytest.param(0.01, id="1%"), pytest.param(0.001, id="0.1%"),
         pytest.param(3, id="exactly-3")]


@pytest.mark.parametrize("exact_below", [50_000, 0], ids=["exact-below-default", "faiss-selector"])
@pytest.mark.parametrize("kept", MASKS)
@pytest.mark.parametrize("kind", KINDS)
def test_masked_search_stays_inside_and_is_full(vectors, built, kind, kept, exact_below):
    x, q = vectors
    mask = _mask(kept, seed=KINDS.index(kind) * 100 + int(1000 * kept))  # seeded, differs per case
    n_kept = int(mask.sum())
    idx, scores = built[(kind, exact_below)].search(q, K, mask=mask)
    assert idx.shape == scores.shape == (len(q), K)
    want = min(K, n_kept)
    for row, srow in zip(idx, scores, strict=True):
        assert (row[:want] >= 0).all(), "a filtered query came back short"
        assert mask[row[:want]].all(), "a result outside the filter"
        assert (row[want:] == -1).all() and np.isneginf(srow[want:]).all()
        assert len(set(row[:want].tolist())) == want  # no duplicates
        assert (np.diff(srow[:want]) <= 1e-6).all()
    ref_idx, _ = brute(x, q, K, mask)
    if kind in ("numpy", "flat") or exact_below > 0:
        # Exact kinds, and strict filters below exact_below, give the exact filtered top-k.
        np.testing.assert_array_equal(idx[:, :want], ref_idx[:, :want])
    else:
        assert recall(idx[:, :want], ref_idx[:, :want]) >= 0.7


@pytest.mark.parametrize("kind", KINDS)
def test_mask_keeping_nothing(vectors, built, kind):
    _, q = vectors
    idx, scores = built[(kind, 0)].search(q, K, mask=np.zeros(N, dtype=bool))
    assert (idx == -1).all() and np.isneginf(scores).all()


@pytest.mark.parametrize("kind", KINDS)
def test_k_larger_than_corpus(kind):
    rng = np.random.default_rng(3)
    x = unit(rng.standard_normal((7, 8)))
    index = DenseIndex(kind, nlist=2).fit(x)
    idx, scores = index.search(x[:2], 10)
    assert (idx[:, :7] >= 0).all() and (idx[:, 7:] == -1).all()
    assert sorted(idx[0, :7].tolist()) == list(range(7))
    assert idx[0, 0] == 0 and idx[1, 0] == 1  # each vector is its own nearest neighbour


def test_empty_query_batch(built):
    idx, scores = built[("flat", 50_000)].search(np.zeros((0, D), np.float32), K)
    assert idx.shape == (0, K)


def test_auto_kind_and_unknown_kind(vectors):
    x, _ = vectors
    assert DenseIndex("auto").fit(x[:100]).kind_ == "flat"
    assert DenseIndex("auto", auto_threshold=50).fit(x[:100]).kind_ == "hnsw"
    with pytest.raises(ValueError, match="unknown index kind"):
        DenseIndex("annoy")


def test_kinds_are_backends_chosen_by_name(tmp_path, vectors, built):
    x, _ = vectors
    assert sorted(BACKENDS) == sorted(KINDS)
    for kind in KINDS:
        index = built[(kind, 50_000)]
        assert isinstance(index.backend_, BACKENDS[kind]) and index.kind_ == kind
    index = built[("flat", 50_000)]
    index.save(tmp_path)
    with pytest.raises(ValueError, match="unknown index kind 'annoy'"):
        DenseIndex.load(tmp_path, index.params(), "annoy")


@pytest.mark.parametrize("kind", KINDS)
def test_empty_index_save_load_roundtrip(tmp_path, kind):
    """An index over no vectors (a live index whose records were all deleted, then compacted) saves and loads."""
    index = DenseIndex(kind).fit(np.zeros((0, D), np.float32))
    index.save(tmp_path)
    loaded = DenseIndex.load(tmp_path, index.params(), index.kind_)
    assert len(loaded) == 0
    idx, scores = loaded.search(np.ones((2, D), np.float32), K)
    assert (idx == -1).all() and np.isneginf(scores).all()


@pytest.mark.parametrize("kind", KINDS)
def test_dense_save_load_roundtrip(tmp_path, vectors, built, kind):
    _, q = vectors
    index = built[(kind, 50_000)]
    files = index.save(tmp_path)
    assert "vectors.npy" in files and all((tmp_path / f).is_file() for f in files)
    loaded = DenseIndex.load(tmp_path, index.params(), index.kind_)
    mask = _mask(0.5, seed=9)
    for m in (None, mask):
        a_idx, a_s = index.search(q, K, mask=m)
        b_idx, b_s = loaded.search(q, K, mask=m)
        np.testing.assert_array_equal(a_idx, b_idx)
        np.testing.assert_array_equal(a_s, b_s)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(KINDS), n=st.integers(1, 120), k=st.integers(1, 30), seed=st.integers(0, 10_000),
       keep=st.floats(0.0, 1.0), exact_below=st.sampled_from([0, 50_000]))
def test_property_results_sorted_and_inside_mask(kind, n, k, seed, keep, exact_below):
    rng = np.random.default_rng(seed)
    x = unit(rng.standard_normal((n, 8)))
    q = unit(rng.standard_normal((3, 8)))
    mask = rng.random(n) < keep
    index = DenseIndex(kind, nlist=max(1, n // 10), exact_below=exact_below).fit(x)
    idx, scores = index.search(q, k, mask=mask)
    want = min(k, int(mask.sum()))
    assert (idx[:, :want] >= 0).all() and (idx[:, want:] == -1).all()
    assert mask[idx[:, :want]].all()
    assert (np.diff(scores[:, :want], axis=1) <= 1e-6).all()  # best first


# ---- top_k -----------------------------------------------------------------------------------------------------
def test_top_k_basic():
    idx, val = top_k(np.array([0.1, 0.5, 0.3, 0.9]), 2)
    assert idx.tolist() == [3, 1]
    assert val.tolist() == [0.9, 0.5]


def test_top_k_skips_non_finite_and_caps_k():
    idx, val = top_k(np.array([np.nan, 1.0, -np.inf, 0.5, np.inf]), 10)
    assert idx.tolist() == [1, 3]
    assert top_k(np.array([1.0, 2.0]), 0)[0].size == 0
    assert top_k(np.array([np.nan, -np.inf]), 3)[0].size == 0
    assert top_k(np.array([], dtype=np.float32), 3)[0].size == 0


def test_top_k_ties_inside_the_selection():
    idx, _ = top_k(np.array([1.0, 2.0, 2.0, 2.0, 0.0]), 3)
    assert idx.tolist() == [1, 2, 3]




def test_top_k_tie_at_cutoff_prefers_lower_index():
    idx, _ = top_k(np.array([0.0, 0.0, 1.0, 1.0]), 1)
    assert idx.tolist() == [2]


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 60), elements=st.floats(-5, 5, allow_nan=False)), st.integers(1, 70))
def test_property_top_k_sorted_descending(scores, k):
    idx, val = top_k(scores, k)
    assert len(idx) == min(k, len(scores))
    assert (np.diff(val) <= 0).all()
    np.testing.assert_array_equal(val, scores[idx])
    # The values are the k largest: nothing left out beats the smallest one kept.
    rest = np.delete(scores, idx)
    assert rest.size == 0 or rest.max() <= val.min()


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 60), elements=st.integers(0, 3).map(float)), st.integers(1, 70))
def test_property_top_k_matches_stable_reference(scores, k):
    idx, _ = top_k(scores, k)
    reference = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:k]
    assert idx.tolist() == reference


# ---- SparseIndex (BM25) ----------------------------------------------------------------------------------------
CORPUS = [
    ["钛合金", "锻件", "热处理"],
    ["钛合金", "粉末", "钛合金", "打印"],
    ["锂电池", "正极", "材料"],
    ["乳制品", "液体乳", "乳制品", "乳制品", "灭菌"],
    ["芯片", "封装", "晶圆", "钛合金", "测试", "工艺"],
    ["锂电池", "回收"],
]


def bm25_lucene(query: list[str], corpus: list[list[str]], k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    """BM25 as Lucene (>= 8) scores it: idf = ln(1 + (N - df + .5)/(df + .5)), tf / (tf + k1(1 - b + b·dl/avgdl))."""
    n = len(corpus)
    avgdl = sum(len(d) for d in corpus) / n
    out = np.zeros(n)
    for t in set(query):
        df = sum(t in d for d in corpus)
        if df == 0:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for i, doc in enumerate(corpus):
            tf = doc.count(t)
            out[i] += idf * tf / (tf + k1 * (1 - b + b * len(doc) / avgdl))
    return out


@pytest.fixture(scope="module")
def sparse() -> SparseIndex:
    return SparseIndex().fit(CORPUS)


@pytest.mark.parametrize("query", [["钛合金"], ["钛合金", "热处理"], ["乳制品"], ["锂电池", "回收"],
                                   ["钛合金", "封装", "晶圆"], ["未知词"]])
def test_bm25_scores_match_hand_computed(sparse, query):
    expected = bm25_lucene(query, CORPUS)
    np.testing.assert_allclose(sparse.scores(query), expected, rtol=1e-5, atol=1e-7)


def test_bm25_ranking_by_hand(sparse):
    # 钛合金 is in docs 0, 1, 4: doc 1 has it twice (highest tf), doc 0 is shorter than doc 4.
    idx, val = sparse.search([["钛合金"]], 5)
    assert idx[0].tolist() == [1, 0, 4, -1, -1]
    assert (val[0, 3:] == 0).all()
    # A rare term outweighs a common one: 热处理 (df 1) lifts doc 0 far above the 钛合金-only docs.
    idx, _ = sparse.search([["钛合金", "热处理"]], 2)
    assert idx[0].tolist() == [0, 1]


def test_bm25_custom_parameters():
    sp = SparseIndex(k1=2.0, b=0.3).fit(CORPUS)
    np.testing.assert_allclose(sp.scores(["钛合金", "测试"]), bm25_lucene(["钛合金", "测试"], CORPUS, 2.0, 0.3),
                               rtol=1e-5)


def test_bm25_masked_search_never_returns_masked_docs(sparse):
    mask = np.array([True, False, True, True, False, True])
    idx, val = sparse.search([["钛合金"], ["钛合金", "芯片"], ["锂电池"]], 6, mask=mask)
    assert idx[0].tolist()[:2] == [0, -1]
    assert idx[1].tolist()[:2] == [0, -1]
    assert idx[2].tolist()[:3] == [5, 2, -1]  # same tf; doc 5 is shorter than doc 2
    assert all(mask[i] for i in idx.ravel() if i >= 0)


@settings(max_examples=60, deadline=None)
@given(mask=st.lists(st.booleans(), min_size=len(CORPUS), max_size=len(CORPUS)),
       query=st.lists(st.sampled_from(sorted({t for d in CORPUS for t in d})), min_size=1, max_size=4),
       k=st.integers(1, 8))
def test_property_bm25_mask(mask, query, k):
    sp = SparseIndex().fit(CORPUS)
    m = np.array(mask)
    idx, val = sp.search([query], k, mask=m)
    expected = bm25_lucene(query, CORPUS)
    hits = [i for i in idx[0] if i >= 0]
    assert all(m[i] and expected[i] > 0 for i in hits)
    assert len(hits) == min(k, int(((expected > 0) & m).sum()))
    assert (np.diff(val[0][: len(hits)]) <= 1e-6).all()


def test_bm25_keywords_use_corpus_idf(sparse):
    kws = sparse.keywords(["钛合金", "钛合金", "锻件", "x"], n=5)
    words = [w for w, _ in kws]
    # 锻件 (df 1) beats 钛合金 (df 3) even at half the tf; one-character tokens are not keywords.
    assert words == ["锻件", "钛合金"]
    idf_dj = math.log(1 + (6 - 1 + 0.5) / 1.5)
    assert kws[0][1] == pytest.approx(idf_dj)


def test_bm25_save_load_roundtrip(tmp_path, sparse):
    files = sparse.save(tmp_path)
    assert all((tmp_path / f).is_file() for f in files)
    loaded = SparseIndex.load(tmp_path)
    for q in (["钛合金"], ["锂电池", "回收", "未知"], ["乳制品"]):
        np.testing.assert_array_equal(loaded.scores(q), sparse.scores(q))
    assert loaded.keywords(["锻件", "钛合金"]) == sparse.keywords(["锻件", "钛合金"])


# ---- fusion ----------------------------------------------------------------------------------------------------
def test_minmax_and_ranks():
    np.testing.assert_allclose(minmax(np.array([2.0, 4.0, 3.0])), [0.0, 1.0, 0.5])
    assert (minmax(np.array([5.0, 5.0])) == 0).all()
    assert ranks(np.array([0.2, 0.9, 0.5])).tolist() == [3, 1, 2]


def test_fuse_minmax_by_hand():
    sparse = np.array([10.0, 5.0, 0.0])
    dense = np.array([0.2, 0.6, 0.4])
    # sparse / max = [1, .5, 0]; dense min-max = [0, 1, .5]; w = 0.3
    np.testing.assert_allclose(fuse(sparse, dense, 0.3), [0.7, 0.35 + 0.3, 0.15], rtol=1e-6)
    np.testing.assert_allclose(fuse(np.zeros(3), dense, 0.5), [0.0, 0.5, 0.25], rtol=1e-6)


def test_fuse_rrf_by_hand():
    sparse = np.array([3.0, 1.0])
    dense = np.array([0.1, 0.9])
    w = 0.4
    expected = [(1 - w) / 61 + w / 62, (1 - w) / 62 + w / 61]
    np.testing.assert_allclose(fuse(sparse, dense, w, method="rrf"), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="unknown fusion"):
        fuse(sparse, dense, w, method="max")


# ---- compressed storage (float16 / sq8) ------------------------------------------------------------------------
STORAGES = ["float16", "sq8"]


@pytest.fixture(scope="module")
def built_compressed(clustered) -> dict[tuple[str, str, int], DenseIndex]:
    x, _ = clustered
    return {(kind, storage, eb): DenseIndex(kind, storage=storage, exact_below=eb).fit(x)
            for kind in KINDS for storage in STORAGES for eb in (50_000, 0)}


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_compressed_storage_close_to_float32_exact(clustered, built_compressed, kind, storage):
    x, q = clustered
    index = built_compressed[(kind, storage, 50_000)]
    assert index.storage_ == storage and index.vectors_.dtype == np.float16
    truth, truth_scores = brute(x, q, K)
    idx, scores = index.search(q, K)
    # Scores are inner products with the float16-rounded vectors: within 2^-11 relative of the float32 ones.
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", q, x[idx]), atol=5e-4)
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", q, x[idx].astype(np.float16).astype(np.float32)),
                               atol=1e-5)
    if kind in ("numpy", "flat"):
        # Exact over float16: only near-ties (score gaps under the rounding) may swap at the cut-off.
        assert recall(idx, truth) >= 0.99
        np.testing.assert_allclose(scores, truth_scores, atol=5e-4)
    else:
        assert recall(idx, truth) >= 0.95


@pytest.mark.parametrize("exact_below", [50_000, 0], ids=["exact-below-default", "faiss-selector"])
@pytest.mark.parametrize("kept", MASKS)
@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_compressed_masked_search_stays_inside_and_is_full(clustered, built_compressed, kind, storage, kept,
                                                           exact_below):
    x, q = clustered
    mask = _mask(kept, seed=KINDS.index(kind) * 100 + int(1000 * kept) + 7)
    want = min(K, int(mask.sum()))
    idx, scores = built_compressed[(kind, storage, exact_below)].search(q, K, mask=mask)
    assert (idx[:, :want] >= 0).all() and (idx[:, want:] == -1).all() and np.isneginf(scores[:, want:]).all()
    assert mask[idx[:, :want]].all()
    assert (np.diff(scores[:, :want], axis=1) <= 1e-6).all()
    ref_idx, _ = brute(x, q, K, mask)
    exact = kind in ("numpy", "flat") or exact_below > 0
    assert recall(idx[:, :want], ref_idx[:, :want]) >= (0.99 if exact else 0.7)


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_compressed_save_load_roundtrip(tmp_path, clustered, built_compressed, kind, storage):
    _, q = clustered
    index = built_compressed[(kind, storage, 50_000)]
    files = index.save(tmp_path)
    # A float16 HNSW graph holds the only copy of the vectors.
    assert ("vectors.npy" in files) == (kind != "hnsw" or storage != "float16")
    loaded = DenseIndex.load(tmp_path, index.params(), index.kind_)
    assert loaded.storage_ == storage
    np.testing.assert_array_equal(loaded.vectors_, index.vectors_)
    for m in (None, _mask(0.5, seed=9)):
        a_idx, a_s = index.search(q, K, mask=m)
        b_idx, b_s = loaded.search(q, K, mask=m)
        np.testing.assert_array_equal(a_idx, b_idx)
        np.testing.assert_array_equal(a_s, b_s)


def test_compressed_files_that_disagree_are_refused(tmp_path, clustered, built_compressed):
    x, _ = clustered
    index = built_compressed[("hnsw", "sq8", 50_000)]
    index.save(tmp_path)
    with pytest.raises(ValueError, match="parameters say float32"):
        DenseIndex.load(tmp_path, {**index.params(), "storage": "float32"}, "hnsw")
    np.save(tmp_path / "vectors.npy", x)  # float32 vectors beside an 8-bit graph
    with pytest.raises(ValueError, match="faiss.index is sq8"):
        DenseIndex.load(tmp_path, {**index.params(), "storage": "auto"}, "hnsw")
    np.save(tmp_path / "vectors.npy", x[:10].astype(np.float16))
    with pytest.raises(ValueError, match="disagrees"):
        DenseIndex.load(tmp_path, index.params(), "hnsw")
    raw = (tmp_path / "faiss.index").read_bytes()
    (tmp_path / "faiss.index").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="faiss.index"):
        DenseIndex.load(tmp_path, index.params(), "hnsw")


def test_auto_storage_and_unknown_storage(clustered):
    x, _ = clustered
    assert DenseIndex("auto").fit(x).storage_ == "float32"
    assert DenseIndex("auto", auto_threshold=100, compress_above=1000).fit(x).storage_ == "float16"
    assert DenseIndex("flat", compress_above=1000).fit(x).storage_ == "float16"
    with pytest.raises(ValueError, match="unknown index storage"):
        DenseIndex(storage="int4")


@pytest.mark.parametrize("storage", STORAGES)
def test_compressed_delta_equals_fresh_build(clustered, storage):
    """Vectors added live are rounded as a fresh build rounds them: same scores, same exact top-k."""
    x, q = clustered
    live = DenseIndex("flat", storage=storage).fit(x[:2000]).updated(add=x[2000:]).updated(delete=[5, 2500])
    alive = np.ones(len(x), bool)
    alive[[5, 2500]] = False
    fresh = DenseIndex("flat", storage=storage).fit(x[alive])
    np.testing.assert_array_equal(live.live_vectors(), fresh.live_vectors())
    assert live.live_vectors().dtype == np.float32
    li, ls = live.search(q, K)
    fi, fs = fresh.search(q, K)
    np.testing.assert_array_equal(np.flatnonzero(alive)[fi], li)
    np.testing.assert_allclose(ls, fs, atol=1e-6)
    compacted = live.compacted()
    assert compacted.storage_ == storage and len(compacted.delta_) == 0
    np.testing.assert_array_equal(compacted.vectors_, fresh.vectors_)
