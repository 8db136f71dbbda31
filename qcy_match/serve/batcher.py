"""One matching thread that answers concurrent requests in batches.

Matching is CPU work under the GIL, and the dense encoders run their own threads: sixteen request threads calling
the engine at once fight over the cores and each query gets slower than alone. Instead every ``/v1/match`` request
is queued; one thread takes whatever is queued (up to ``MAX_QUERIES``), validates the requests' queries together,
groups them by ``(k, filters, explain)`` and matches each group in one engine call, which also encodes the queries
as one batch. Each request gets the rows it would get alone.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from .service import Service

logger = logging.getLogger(__name__)
MAX_QUERIES = 256


@dataclass
class _Item:
    queries: Sequence[str | Mapping[str, Any]]
    k: int
    filters: Mapping[str, Any] | None
    explain: bool
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
        item = _Item(queries, k, filters, explain)
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
        items, n = [first], len(first.queries)
        while n < MAX_QUERIES:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # stop after this batch
                break
            items.append(item)
            n += len(item.queries)
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
        """Validate each request, then match each group of compatible requests in one engine call."""
        live = [item for item in items if item.future.set_running_or_notify_cancel()]  # skip timed-out ones
        frames = dict(zip(map(id, live), self.service.validate_batch([i.queries for i in live]), strict=True)) \
            if live else {}
        groups: dict[tuple[Any, ...], list[tuple[_Item, Any]]] = {}
        for item in live:
            try:
                recs = frames.get(id(item))
                if recs is None:
                    recs = self.service.validate(item.queries, None)[0]
                parsed = self.service.parse_filters(item.filters)
            except Exception as exc:  # a bad field (422) or worse: that request's answer, not the batch's
                item.future.set_exception(exc)
                continue
            key = (item.k, json.dumps(parsed, sort_keys=True, ensure_ascii=False), item.explain)
            groups.setdefault(key, []).append((item, (recs, parsed)))
        for (k, _, explain), members in groups.items():
            try:
                results = self.service.match_prepared([recs for _, (recs, _) in members], k,
                                                      members[0][1][1], explain)
                for (item, _), result in zip(members, results, strict=True):
                    item.future.set_result(result)
            except Exception as exc:
                for item, _ in members:
                    if not item.future.done():
                        item.future.set_exception(exc)
