"""Thread policy for per-query work: small requests run on one thread, big batches on all of them.

A single need gains little from a BLAS or OpenMP team (its products are a few hundred rows), but waking the team
costs a lot on a busy machine: a worker that is descheduled holds up the whole product, and idle OpenBLAS workers
spin before they sleep, taking CPU from the query itself. With a CPU-bound process beside it the tail latency grows
many times the median. So every per-query stage (encoding, dense search and scoring, fusion, explanations,
confidence) of a request of fewer than ``parallel_from`` queries (16 by default; 0 turns the policy off) runs with
one BLAS thread and one OpenMP thread; batches keep what the process has (``OMP_NUM_THREADS``, or the core count).

OpenMP thread counts (FAISS's, torch's) are a setting of the calling thread, so a small request lowers them for its
own thread only. BLAS thread counts are process-wide: the first small request to start lowers them and the last to
finish restores them, counted under a lock, so overlapping small requests never leave them lowered (a batch that
overlaps a small request runs single-threaded meanwhile).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Any

PARALLEL_FROM = 16
# Modules whose import loads a BLAS or OpenMP runtime of its own: the libraries are looked up again once they appear.
_RUNTIMES = ("faiss", "torch", "onnxruntime", "sklearn", "scipy")

_lock = threading.Lock()
_state: dict[str, Any] = {"users": 0, "restore": None, "seen": None, "blas": None, "openmp": None}
_local = threading.local()


def _controllers() -> tuple[Any, Any]:
    """The loaded BLAS and OpenMP libraries as threadpoolctl controllers (looked up again when a runtime that
    brings its own has been imported since: the lookup scans every loaded library, tens of milliseconds).
    """
    seen = tuple(m in sys.modules for m in _RUNTIMES)
    with _lock:
        if _state["seen"] != seen:
            from threadpoolctl import ThreadpoolController

            found = ThreadpoolController()
            _state.update(seen=seen, blas=found.select(user_api="blas"), openmp=found.select(user_api="openmp"))
        return _state["blas"], _state["openmp"]


def single(n_queries: int, parallel_from: int = PARALLEL_FROM) -> bool:
    """Whether a request of ``n_queries`` runs on one thread under the policy."""
    return parallel_from > 0 and n_queries < parallel_from


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with one BLAS thread and, in this thread, one OpenMP thread (nesting is free)."""
    depth = getattr(_local, "depth", 0)
    if depth:
        _local.depth = depth + 1
        try:
            yield
        finally:
            _local.depth = depth
        return
    blas, openmp = _controllers()
    _local.depth = 1
    omp = openmp.limit(limits=1)
    with _lock:
        _state["users"] += 1
        if _state["users"] == 1:
            _state["restore"] = blas.limit(limits=1)
    try:
        yield
    finally:
        with _lock:
            _state["users"] -= 1
            if _state["users"] == 0:
                _state["restore"].restore_original_limits()
                _state["restore"] = None
        omp.restore_original_limits()
        _local.depth = 0


def for_queries(n_queries: int, parallel_from: int = PARALLEL_FROM) -> contextlib.AbstractContextManager[None]:
    """:func:`one_thread` for a request of fewer than ``parallel_from`` queries, else nothing."""
    return one_thread() if single(n_queries, parallel_from) else contextlib.nullcontext()


def blas(team: int | None) -> contextlib.AbstractContextManager[Any]:
    """BLAS on ``team`` threads for the block (an encoder's batch), or :func:`one_thread` for None; inside a
    :func:`one_thread` block (a small request) nothing changes.
    """
    if team is None:
        return one_thread()
    if getattr(_local, "depth", 0):
        return contextlib.nullcontext()
    return _controllers()[0].limit(limits=team)


def in_force() -> dict[str, int]:
    """The largest BLAS and OpenMP (this thread's) thread counts now in force: what the tests check."""
    return {api: max((lib.num_threads for lib in found.lib_controllers), default=0)
            for api, found in zip(("blas", "openmp"), _controllers(), strict=True)}
