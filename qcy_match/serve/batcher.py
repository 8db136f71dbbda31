"""One matching thread that answers concurrent requests in batches.

Matching is CPU work under the GIL, and the dense encoders run their own threads: sixteen request threads calling
the engine at once fight over the cores and each query gets slower than alone. Instead every ``/v1/match`` request
is queued; one thread takes whatever is queued (up to ``MAX_QUERIES``) and matches it as one batch (see
:mod:`qcy_match.serve.queries`): each request gets the rows it would get alone.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from .queries import MatchItem
from .service import Service

logger = logging.getLogger(__name__)
MAX_QUERIES = 256


@dataclass
class _Item:
    request: MatchItem
    future: Future[Any] = field(default_factory=Future)


class Batcher:
    """Queue of match requests served by one thread; :meth:`submit` returns a future of ``(ids, rows)``."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="qcy-match-batcher", daemon=True)
        self._thread.start()

    def submit(self, queries: Sequence[str | Mapping[str, Any]], k: int, filters: Mapping[str, Any] | None,
               explain: bool) -> Future[Any]:
        """Queue one request's queries."""
        item = _Item(MatchItem(queries, k, filters, explain))
        self._queue.put(item)
        return item.future

    def close(self, timeout: float = 30) -> None:
        """Finish what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _take(self) -> list[_Item] | None:
        first = self._queue.get()
        if first is None:
            return None
        items, n = [first], len(first.request.queries)
        while n < MAX_QUERIES:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # stop after this batch
                break
            items.append(item)
            n += len(item.request.queries)
        return items

    def _loop(self) -> None:
        while (items := self._take()) is not None:
            try:
                self._serve(items)
            except Exception as exc:  # the thread must outlive any one batch, or every later request would hang
                logger.error("match batch failed with %s", type(exc).__name__, exc_info=exc)
                for item in items:
                    if not item.future.done():
                        item.future.set_exception(exc)

    def _serve(self, items: list[_Item]) -> None:
        """Match every request still waited for, as one batch."""
        live = [item for item in items if item.future.set_running_or_notify_cancel()]  # skip timed-out ones
        if not live:
            return
        results = self.service.match_items([item.request for item in live])
        for item, result in zip(live, results, strict=True):
            if isinstance(result, Exception):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)
