"""Whole transactions in one call on a database thread of their own.

The store's connection is aiosqlite's: every statement, every fetch and every cursor close is
a round trip between the event loop and aiosqlite's thread, and the store's lock is held
across all of them. Under load each round trip waits for a turn of a busy event loop, so a
transaction of a dozen statements holds the lock for dozens of turns and everything else
that needs the store queues behind it.

For the hot paths (a job's every step) the store runs the same transaction code in one call
instead, on a thread with a connection of its own (see ``batches``), through an
`InlineConnection` wrapper whose awaitables are already done when they are awaited. The
transaction's coroutine then never suspends, so `run_inline` drives it to its end on that
thread. The SQL and the logic are the very same functions the
aiosqlite paths use (they accept either connection, typed `Db`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import aiosqlite

__all__ = ["Body", "Db", "InlineConnection", "InlineCursor", "awaited", "run_inline"]

T = TypeVar("T")
Params = Sequence[Any] | Mapping[str, Any]


class InlineCursor:
    """A sqlite3 cursor behind aiosqlite's cursor API; every call is done when awaited."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    async def fetchone(self) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._cursor.fetchone()
        return row

    async def fetchall(self) -> Iterable[sqlite3.Row]:
        rows: list[sqlite3.Row] = self._cursor.fetchall()
        return rows

    async def close(self) -> None:
        self._cursor.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._cursor.close()


class _Executed:
    """What `execute` returns: awaitable, and usable as ``async with``, as aiosqlite's is."""

    def __init__(self, cursor: InlineCursor) -> None:
        self._cursor = cursor

    def __await__(self) -> Generator[Any, None, InlineCursor]:
        return self._done().__await__()

    async def _done(self) -> InlineCursor:
        return self._cursor

    async def __aenter__(self) -> InlineCursor:
        return self._cursor

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._cursor.close()


class InlineConnection:
    """A plain sqlite3 connection with the subset of aiosqlite's API the store's SQL uses."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, parameters: Params | None = None) -> _Executed:
        cursor = self._connection.execute(sql, () if parameters is None else parameters)
        return _Executed(InlineCursor(cursor))


Db = aiosqlite.Connection | InlineConnection
"""A connection the store's SQL functions accept: aiosqlite's, or the inline one."""

Body = Callable[[Db], Awaitable[Any]]
"""One caller's transaction: the store's SQL, given a connection."""


def run_inline(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (every await in it is already done) to its end."""
    try:
        coro.send(None)
    except StopIteration as finished:
        return finished.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("an inline transaction waited for something")


async def awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable
