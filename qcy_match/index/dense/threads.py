"""Thread policy for dense searches: small searches run on one thread, big batches on all of them.

A single query gains little from FAISS's OpenMP team or a multi-threaded BLAS product, but waking every thread
for it costs a lot on a busy machine: a thread that is descheduled holds up the whole team, so with a CPU-bound
process beside it the tail latency grows many times the median. Searches of fewer than ``parallel_from`` queries
(a :class:`~qcy_match.index.dense.DenseIndex` setting, 16 by default; 0 lets every search use all threads) run
single-threaded.

FAISS's thread count is an OpenMP setting of the calling thread, so concurrent searches in other threads keep
theirs. The BLAS thread count (numpy's exact scans) is process-wide: the first small search to start lowers it and
the last to finish restores it, counted under a lock, so overlapping small searches never leave it lowered.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from .storage import faiss_module

_lock = threading.Lock()
_state: dict[str, Any] = {"users": 0, "blas": None, "restore": None}


def _blas() -> Any:
    """The BLAS libraries numpy loaded, as a threadpoolctl controller (found once)."""
    if _state["blas"] is None:
        from threadpoolctl import ThreadpoolController

        _state["blas"] = ThreadpoolController().select(user_api="blas")
    return _state["blas"]


@contextlib.contextmanager
def search_threads(n_queries: int, parallel_from: int) -> Iterator[None]:
    """Run the block on one thread when ``n_queries`` is below ``parallel_from``, else unchanged."""
    if parallel_from <= 0 or n_queries >= parallel_from:
        yield
        return
    faiss = faiss_module()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    with _lock:
        _state["users"] += 1
        if _state["users"] == 1:
            _state["restore"] = _blas().limit(limits=1)
    try:
        yield
    finally:
        with _lock:
            _state["users"] -= 1
            if _state["users"] == 0:
                _state["restore"].restore_original_limits()
                _state["restore"] = None
        faiss.omp_set_num_threads(before)
