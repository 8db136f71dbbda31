"""Dense index policies: parameters chosen from n, the single-thread policy, memory-mapped loading, progress."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from qcy_match.index.dense import DenseIndex, Tuning


def unit(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_parameters_grow_with_n_and_explicit_values_win() -> None:
    auto = Tuning(hnsw_m=0, ef_search=0, ef_construction=0, nlist=0, nprobe=0, refine=2)
    sizes = [1_000, 10_000, 100_000, 300_000, 1_000_000, 10_000_000]
    rows = [auto.for_n(n) for n in sizes]
    for field in ("hnsw_m", "ef_search", "ef_construction", "nlist", "nprobe"):
        values = [getattr(t, field) for t in rows]
        assert all(v > 0 for v in values) and values == sorted(values), (field, values)
    assert rows[4].ef_search > rows[2].ef_search  # 1M searches wider than 100k
    fixed = Tuning(hnsw_m=12, ef_search=40, ef_construction=50, nlist=7, nprobe=3, refine=2)
    assert fixed.for_n(1_000_000) == fixed


def test_built_and_loaded_index_report_the_resolved_parameters(tmp_path: Path) -> None:
    x = unit(3000)
    index = DenseIndex("hnsw").fit(x)
    assert index.params()["ef_search"] == 0  # the manifest keeps "from n", so a rebuild at another size re-resolves
    assert index.tuning_ == index._tuning().for_n(3000)
    assert index.backend_.faiss_.hnsw.efSearch == index.tuning_.ef_search
    index.save(tmp_path)
    loaded = DenseIndex.load(tmp_path, index.params(), index.kind_)
    assert loaded.tuning_.ef_search == index.tuning_.ef_search == loaded.backend_.faiss_.hnsw.efSearch


def _blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


@pytest.fixture
def two_threads() -> Iterator[None]:
    """FAISS and BLAS on two threads whatever OMP_NUM_THREADS says, so that going down to one shows."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    with threadpool_limits(limits=2, user_api="blas"):
        yield
    faiss.omp_set_num_threads(before)


@pytest.mark.parametrize("kind", ["hnsw", "numpy"])
@pytest.mark.usefixtures("two_threads")
def test_single_queries_run_on_one_thread_and_give_the_same_results(kind: str) -> None:
    x, q = unit(3000), unit(40, seed=1)
    mask = np.random.default_rng(2).random(3000) < 0.3
    index = DenseIndex(kind).fit(x)
    faiss_before, blas_before = faiss.omp_get_max_threads(), _blas_threads()
    assert faiss_before == 2 and set(blas_before) == {2}
    seen: list[int] = []
    blas_seen: list[list[int]] = []
    real = index._search

    def spy(*args: object, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
        seen.append(faiss.omp_get_max_threads())
        blas_seen.append(_blas_threads())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    index._search = spy  # type: ignore[method-assign]
    policy = [index.search(q[i:i + 1], 10, mask) for i in range(len(q))]
    assert seen and set(seen) == {1}  # inside a single-query search FAISS and BLAS run one thread
    assert all(set(b) == {1} for b in blas_seen)
    assert faiss.omp_get_max_threads() == 2 and _blas_threads() == blas_before
    index.search(q, 10, mask)  # a batch of 40 keeps every thread
    assert seen[-1] == 2 and set(blas_seen[-1]) == {2}
    index.parallel_from = 0
    free = [index.search(q[i:i + 1], 10, mask) for i in range(len(q))]
    assert seen[-1] == faiss_before  # the policy turned off: no change
    for (i1, s1), (i2, s2) in zip(policy, free, strict=True):
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_allclose(s1, s2, rtol=1e-5)
    assert faiss.omp_get_max_threads() == faiss_before and _blas_threads() == blas_before


@pytest.mark.usefixtures("two_threads")
def test_overlapping_single_queries_restore_the_thread_counts() -> None:
    x, q = unit(2000), unit(8, seed=1)
    index = DenseIndex("numpy").fit(x)
    blas_before = _blas_threads()
    assert set(blas_before) == {2}
    expected = index.search(q, 5)[0]
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for _ in range(30):
                np.testing.assert_array_equal(index.search(q[i:i + 1], 5)[0], expected[i:i + 1])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(q))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _blas_threads() == blas_before  # the last small search out restored BLAS's thread count


@pytest.mark.parametrize("storage", ["float32", "float16"])
def test_loaded_index_is_memory_mapped_and_searches_as_read(tmp_path: Path, storage: str) -> None:
    x, q = unit(3000), unit(20, seed=1)
    mask = np.random.default_rng(3).random(3000) < 0.5
    built = DenseIndex("hnsw", storage=storage).fit(x)
    built.save(tmp_path)
    mapped = DenseIndex.load(tmp_path, built.params(), built.kind_)
    read = DenseIndex.load(tmp_path, built.params(), built.kind_, mmap=False)
    for m in (None, mask):
        a, b = mapped.search(q, 10, m), read.search(q, 10, m)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert not mapped.vectors_.flags.writeable
    if storage == "float32":
        assert isinstance(mapped.vectors_, np.memmap) and not isinstance(read.vectors_, np.memmap)
    # Live updates on a mapped index go to the delta; the mapped files are never written.
    up = mapped.updated(add=unit(5, seed=9), delete=[0, 1])
    assert len(up) == 3005 and 0 not in up.search(q, 10)[0]
    np.testing.assert_array_equal(up.compacted().vectors_[:3], np.asarray(built.vectors_[2:5]))


def test_index_stage_shows_a_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    x, q = unit(3000), unit(5, seed=1)
    shown = DenseIndex("hnsw").fit(x, show_progress=True)
    err = capsys.readouterr().err
    assert "index" in err and "3000/3000" in err
    quiet = DenseIndex("hnsw").fit(x)
    assert capsys.readouterr().err == ""
    np.testing.assert_array_equal(shown.search(q, 10)[0], quiet.search(q, 10)[0])
