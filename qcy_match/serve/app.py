"""The FastAPI application: routers, error answers, limits, metrics, and the snapshot schedule.

Every error reaches the client as JSON ``{"error": …}``: 422 names the bad fields, 413/429/504 say which limit,
and anything unexpected is a bare 500 (the traceback goes to the server's log only, never to the client).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline.core import _STATIC_PATH as SWAGGER_ASSETS

from .._version import __version__
from . import routes_admin, routes_match, routes_ops, routes_page, routes_records
from .auth import Denied, Gate
from .batcher import Batcher
from .blocking import TimedOut
from .limits import BodyLimit, RateLimiter
from .metrics import Metrics
from .service import FieldError, Service
from .settings import Settings
from .tokens import TokenStore, read_tokens

logger = logging.getLogger(__name__)

DESCRIPTION = """Match enterprise technology needs (企业技术需求) with technology achievements (科技成果).

Send `Authorization: Bearer <token>` (tokens are made with `qcy-match token`); `/healthz` and `/readyz` are open.
Limits: body size (413), queries per request and `k` (422), requests per second per token (429), request time (504).
"""


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts[:1] == ["body"] and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The offending input is left out: it may be a whole record, and it is the client's own anyway.
        fields = [{"field": "body", "message": f"{e.get('msg')} at character {e['loc'][-1]}: "
                   f"{(e.get('ctx') or {}).get('error', '')}"} if e.get("type") == "json_invalid" else
                  {"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))} for e in exc.errors()]
        if fields and fields[0]["field"] == "body" and "json" not in request.headers.get("content-type", "json"):
            fields[0]["message"] += " (send the body as JSON with Content-Type: application/json)"
        first = fields[0] if fields else {"field": "body", "message": "invalid"}
        return JSONResponse({"error": f"invalid request: {first['field']}: {first['message']}", "fields": fields},
                            status_code=422)

    @app.exception_handler(FieldError)
    async def bad_field(request: Request, exc: FieldError) -> JSONResponse:
        return JSONResponse({"error": f"invalid request: {exc.field}: {exc.message}",
                             "fields": [{"field": exc.field, "message": exc.message}]}, status_code=422)

    @app.exception_handler(Denied)
    async def denied(request: Request, exc: Denied) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        if exc.status == 429:
            headers["Retry-After"] = str(max(1, round(exc.retry_after + 0.5)))
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)

    @app.exception_handler(TimedOut)
    async def timed_out(request: Request, exc: TimedOut) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=504)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        logger.error("%s %s failed with %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
        return JSONResponse({"error": "internal error (see the server log)"}, status_code=500)


class _Guarded:
    """Catch what escapes the app (the error handlers' own 500 is re-raised by Starlette for logging)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.fastapi: FastAPI | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception:  # already logged and answered by the handler above; keep it out of uvicorn's stderr
            if scope["type"] != "http":
                raise


async def _snapshots(service: Service, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await anyio.to_thread.run_sync(service.checkpoint)
        except Exception:
            logger.exception("scheduled snapshot failed; the log keeps every update and is retried next time")


def create_app(settings: Settings, service: Service | None = None) -> Any:
    """The ASGI application serving ``settings.index`` (opened here unless ``service`` is given)."""
    service = service or Service(settings)
    store = TokenStore(read_tokens(settings.tokens)) if settings.tokens else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        if service.wal is not None and settings.snapshot_interval > 0:
            task = asyncio.create_task(_snapshots(service, settings.snapshot_interval))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
            await anyio.to_thread.run_sync(batcher.close)
            await anyio.to_thread.run_sync(service.close)
            logger.info("shut down; index saved and log truncated" if service.wal else "shut down")

    app = FastAPI(title="qcy-match", version=__version__, description=DESCRIPTION, docs_url=None, redoc_url=None,
                  lifespan=lifespan)
    app.state.settings = settings
    app.state.service = service
    app.state.batcher = batcher = Batcher(service)
    app.state.metrics = metrics = Metrics()
    app.state.gate = Gate(store, RateLimiter(settings.rate, settings.burst))
    _install_errors(app)
    for module in (routes_ops, routes_match, routes_records, routes_admin, routes_page):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=routes_page.STATIC), name="static")
    app.mount(routes_page.DOCS_ASSETS, StaticFiles(directory=str(SWAGGER_ASSETS)), name="docs-assets")
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    guarded = _Guarded(metrics.middleware(app))
    guarded.fastapi = app
    return guarded
