"""Prometheus metrics: requests, latency per endpoint, errors, index size, writes; one registry per app.

Requests are labelled by the route's template (``/v1/match``), never by the raw path, so a scan of random URLs
cannot grow the label set; unmatched paths count as ``other``.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The service's metrics and an ASGI middleware that records every HTTP request."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("qcy_requests", "HTTP requests", ["method", "route", "status"], registry=r)
        self.latency = Histogram("qcy_request_seconds", "HTTP request latency", ["route"], buckets=BUCKETS,
                                 registry=r)
        self.errors = Counter("qcy_errors", "Requests answered with an error status (4xx/5xx)", ["route", "status"],
                              registry=r)
        self.records = Gauge("qcy_index_records", "Live records in the served index", registry=r)
        self.pending = Gauge("qcy_log_pending_ops", "Logged updates not yet in a snapshot", registry=r)
        self.generation = Gauge("qcy_index_generation", "Writes and reloads applied since start", registry=r)
        self.writes = Counter("qcy_writes", "Records changed by updates", ["op"], registry=r)
        self.queries = Counter("qcy_queries", "Queries matched", registry=r)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)

    def middleware(self, app: Any) -> Any:
        """Wrap an ASGI app so each HTTP request is counted and timed."""
        metrics = self

        async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            start = time.perf_counter()
            status = 500

            async def send_status(message: Any) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_status)
            finally:
                route = scope.get("route")
                name = getattr(route, "path", None) or "other"
                metrics.requests.labels(scope["method"], name, str(status)).inc()
                metrics.latency.labels(name).observe(time.perf_counter() - start)
                if status >= 400:
                    metrics.errors.labels(name, str(status)).inc()

        return wrapped
