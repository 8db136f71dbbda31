"""Progress bars that are not there when they are off.

A disabled ``tqdm`` bar still takes tqdm's write lock, a semaphore shared with every process forked from this one;
a forked worker killed while holding it (a crash, a SIGKILL, an executor lost by Spark) leaves the parent waiting on
it forever at its next bar. So a bar nobody asked for is a plain stand-in that never touches tqdm.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _Off(Generic[T]):
    """What a bar offers (iteration, update, close, a context), doing nothing."""

    def __init__(self, iterable: Iterable[T] | None) -> None:
        self._iterable = iterable

    def __iter__(self) -> Iterator[T]:
        return iter(self._iterable if self._iterable is not None else ())

    def update(self, n: float = 1) -> None:
        """Nothing to show."""

    def close(self) -> None:
        """Nothing to close."""

    def __enter__(self) -> _Off[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def bar(iterable: Iterable[T] | None = None, *, enabled: bool, **options: Any) -> Any:
    """A ``tqdm.auto`` bar over ``iterable`` (or with ``total=``) when ``enabled``, else a stand-in that does nothing;
    ``options`` are tqdm's (desc, total, unit, ...).
    """
    if not enabled:
        return _Off(iterable)
    from tqdm.auto import tqdm

    return tqdm(iterable, **options)
