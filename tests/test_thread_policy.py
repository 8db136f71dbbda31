"""The thread policy (qcy_match.threads): every per-query stage of a single need runs on one BLAS and one OpenMP
thread; a batch keeps the process's threads; the counts come back after, also when small requests overlap."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import faiss
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from qcy_match import MatchEngine, threads
from qcy_match.match import confidence
from qcy_match.match import engine as engine_module


@pytest.fixture
def two_threads() -> Iterator[None]:
    """BLAS and OpenMP on two threads whatever OMP_NUM_THREADS says, so that going down to one shows."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    with threadpool_limits(limits=2):
        yield
    faiss.omp_set_num_threads(before)


def spy_stages(engine: MatchEngine, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[dict[str, int]]]:
    """Wrap the engine's per-query stages so that each call records the thread counts in force while it runs."""
    seen: dict[str, list[dict[str, int]]] = {}

    def spy(owner: Any, attr: str, stage: str) -> None:
        real: Callable[..., Any] = getattr(owner, attr)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            seen.setdefault(stage, []).append(threads.in_force())
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, attr, wrapped)

    model = engine.encoder_._load()  # type: ignore[attr-defined]
    st = engine._snap
    spy(model, "encode", "encode")  # the package's forward pass, inside the encoder's own setting
    spy(st.dense, "_search", "dense_search")
    spy(st.dense, "score", "dense_score")
    spy(engine_module, "explain", "explain")
    spy(confidence, "of_matches", "confidence")
    return seen


@pytest.mark.usefixtures("two_threads")
def test_single_need_runs_every_stage_on_one_thread_and_a_batch_on_all(
        use_engine: MatchEngine, needs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(use_engine.encoder_, "threads", 2)  # the encoder's batch team, whatever the core count
    before = threads.in_force()
    assert before == {"blas": 2, "openmp": 2}
    seen = spy_stages(use_engine, monkeypatch)
    rows = needs.to_dict("records")
    single = [use_engine.match([q], k=5) for q in rows]
    stages = {"encode", "dense_search", "dense_score", "explain", "confidence"}
    assert set(seen) == stages
    for stage, counts in seen.items():
        assert counts and all(c == {"blas": 1, "openmp": 1} for c in counts), (stage, counts)
    assert threads.in_force() == before  # restored after each single need

    seen.clear()
    batch = use_engine.match(needs.sample(threads.PARALLEL_FROM, replace=True, random_state=0), k=5)
    assert len(batch.ids) == threads.PARALLEL_FROM
    assert set(seen) == stages
    for stage, counts in seen.items():
        assert all(c["blas"] == 2 for c in counts), (stage, counts)  # a batch keeps every thread
    assert all(c["openmp"] == 2 for c in seen["dense_search"])
    assert threads.in_force() == before

    # The policy changes threads, not results: single needs with the policy off give the same matches.
    monkeypatch.setattr(use_engine._snap.dense, "parallel_from", 0)
    free = [use_engine.match([q], k=5) for q in rows]
    for a, b in zip(single, free, strict=True):
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)
    assert threads.in_force() == before


@pytest.mark.usefixtures("two_threads")
def test_overlapping_and_nested_small_requests_restore_the_counts() -> None:
    before = threads.in_force()
    inside: list[dict[str, int]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def worker() -> None:
        try:
            start.wait()
            for _ in range(50):
                with threads.for_queries(1):
                    with threads.one_thread():  # nesting (an encoder inside a request) changes nothing
                        inside.append(threads.in_force())
                    inside.append(threads.in_force())
                    np.ones((64, 64)) @ np.ones((64, 64))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not errors
    # OpenMP's count is each thread's own. (numpy's OpenBLAS ignores a BLAS setting made outside the main thread
    # once the main thread has made one, as the fixture has: BLAS is checked in the main thread, above.)
    assert len(inside) == 400 and all(c["openmp"] == 1 for c in inside)
    assert threads.in_force() == before  # the last small request out restored BLAS; OpenMP never left this thread


def test_which_requests_run_on_one_thread() -> None:
    assert threads.single(1) and threads.single(threads.PARALLEL_FROM - 1)
    assert not threads.single(threads.PARALLEL_FROM)
    assert not threads.single(1, parallel_from=0)  # 0 turns the policy off
    assert threads.single(7, parallel_from=8) and not threads.single(8, parallel_from=8)
