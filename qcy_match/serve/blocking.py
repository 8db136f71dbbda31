"""Run the engine's blocking work in a worker thread, under the request timeout."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import anyio
from fastapi import Request

T = TypeVar("T")


class TimedOut(Exception):
    """The work did not finish within the request timeout (answered 504)."""


async def run_blocking(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a thread; past the timeout the client gets 504 while the thread finishes alone.

    A write that times out may still complete: its outcome is unknown to the client, as with any timeout.
    """
    timeout = request.app.state.settings.request_timeout
    try:
        with anyio.fail_after(timeout):
            return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), abandon_on_cancel=True)
    except TimeoutError as exc:
        raise TimedOut(f"the request took longer than {timeout:g} s") from exc


async def wait_future(request: Request, future: Future[T]) -> T:
    """The result of work queued elsewhere (the batcher), or 504 past the timeout (then it is skipped if not begun)."""
    timeout = request.app.state.settings.request_timeout
    try:
        with anyio.fail_after(timeout):
            return await asyncio.wrap_future(future)
    except TimeoutError as exc:
        future.cancel()
        raise TimedOut(f"the request took longer than {timeout:g} s") from exc
