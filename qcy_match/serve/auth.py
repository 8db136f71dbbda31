"""Who may call: bearer tokens with scopes, then the caller's rate limit. FastAPI dependencies for the routes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import Request

from .limits import RateLimiter
from .tokens import TokenStore

logger = logging.getLogger(__name__)


class Denied(Exception):
    """A request refused before it runs: 401, 403 or 429 (``retry_after`` seconds)."""

    def __init__(self, status: int, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class Gate:
    """Checks a request's token and scope, and its caller's rate."""

    def __init__(self, store: TokenStore | None, limiter: RateLimiter) -> None:
        self.store = store
        self.limiter = limiter

    def check(self, request: Request, scope: str) -> str:
        """The caller's key (a token's public id, or the client address without tokens); raises :class:`Denied`."""
        if self.store is not None:
            header = request.headers.get("authorization", "")
            kind, _, presented = header.partition(" ")
            token = self.store.find(presented.strip()) if kind.lower() == "bearer" and presented.strip() else None
            if token is None:
                raise Denied(401, "missing or unknown bearer token (Authorization: Bearer <token>)")
            if not token.allows(scope):
                logger.info("token %s (scope %s) refused a %s request", token.id, token.scope, scope)
                raise Denied(403, f"this token's scope is {token.scope}; the request needs {scope}")
            key = token.id
        else:
            key = request.client.host if request.client else "unknown"
        wait = self.limiter.allow(key)
        if wait:
            raise Denied(429, "rate limit exceeded; retry later", retry_after=wait)
        return key


def require(scope: str) -> Callable[[Request], Any]:
    """A dependency that lets the request through only with a token of ``scope`` (write includes read)."""

    # async: a plain function dependency would cost a hop to the thread pool on every request.
    async def dependency(request: Request) -> str:
        gate: Gate = request.app.state.gate
        return gate.check(request, scope)

    dependency.__name__ = f"require_{scope}"
    return dependency
