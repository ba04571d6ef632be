"""Group commit: the store's hot-path transactions, many to one trip and one commit.

Every step of a job's path (admitting it, claiming it, marking its submission, recording its
progress, settling it) is a short transaction. Run one at a time, each would cost a trip to a
database thread and back through the event loop, a lock handed from caller to caller through
the loop, and a ``synchronous = FULL`` commit: under a burst the callers queue behind one
another for many turns of a busy loop, and a job's few writes take far longer than the work
they do.

So the store has a thread of its own with its own connection to the file and a queue. It
takes every transaction queued since its last batch (up to ``BATCH_LIMIT``): the writes run in
one ``BEGIN IMMEDIATE``, each inside a savepoint of its own, with one commit; then the reads,
in one read transaction. It never waits for the event loop between batches: the answers of a
batch go back to the loop in one call, and the thread goes on with the next.

The guarantees are a single transaction's, in the order of the calls: each write sees the
writes queued before it, a write that raises is rolled back alone and its caller gets the
exception, no caller hears of a write before the commit that makes it durable (when the
commit fails, every writer of the batch gets that error and nothing of it is kept), and a
read sees every write that finished before it was asked for. A caller cancelled before its
batch starts is left out; one cancelled later sees its transaction commit all the same, as
with any awaited write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bot.store.sqlite.inline import Body, Db, InlineConnection, awaited, run_inline

__all__ = ["BATCH_LIMIT", "DatabaseThread"]

log = logging.getLogger(__name__)

T = TypeVar("T")

BATCH_LIMIT = 200
"""Transactions in one batch at most, so one batch never holds the file for long."""


@dataclass(slots=True)
class _Call:
    body: Body
    writes: bool
    done: asyncio.Future[Any]


@dataclass(slots=True)
class _Outcome:
    value: Any = None
    error: BaseException | None = None


class DatabaseThread:
    """One connection to the store's file, the one thread that uses it, and its queue."""

    def __init__(self, path: Path, *, busy_timeout: float) -> None:
        self._path = path
        self._busy_timeout = busy_timeout
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._ready: Future[sqlite3.Connection] = Future()
        self._thread = threading.Thread(target=self._serve, name="store", daemon=True)

    @classmethod
    def open(cls, path: Path, *, busy_timeout: float) -> DatabaseThread:
        """Start the thread and connect (the file is already in WAL mode and migrated).

        Blocks until connected: call it off the event loop.
        """
        thread = cls(path, busy_timeout=busy_timeout)
        thread._thread.start()
        thread._ready.result()
        return thread

    @property
    def connection(self) -> sqlite3.Connection:
        """The thread's connection, for tests that plant faults inside SQLite itself."""
        return self._ready.result()

    async def write(self, body: Callable[[Db], Awaitable[T]]) -> T:
        """``body`` as one write transaction of the next batch; its value, or what it raised."""
        result: T = await self._enqueue(body, writes=True)
        return result

    async def read(self, body: Callable[[Db], Awaitable[T]]) -> T:
        """``body`` as a read of the next batch (one snapshot, after the batch's writes)."""
        result: T = await self._enqueue(body, writes=False)
        return result

    async def _enqueue(self, body: Body, *, writes: bool) -> Any:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put(_Call(body, writes, done))
        return await done

    def close(self) -> None:
        """Finish what is queued, then close the connection and end the thread (blocks)."""
        self._queue.put(None)
        self._thread.join()

    # -- on the thread -----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        connection.row_factory = sqlite3.Row
        connection.execute(f"PRAGMA busy_timeout = {round(self._busy_timeout * 1000):d}")
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("PRAGMA secure_delete = ON")
        connection.execute("PRAGMA synchronous = FULL")
        return connection

    def _serve(self) -> None:
        try:
            connection = self._connect()
        except BaseException as exc:
            self._ready.set_exception(exc)
            return
        self._ready.set_result(connection)
        db = InlineConnection(connection)
        try:
            while (batch := self._next_batch()) is not None:
                writes = [call for call in batch if call.writes]
                if writes:
                    _deliver_soon(writes, _run_writes(connection, db, writes))
                reads = [call for call in batch if not call.writes]
                if reads:
                    _deliver_soon(reads, _run_reads(connection, db, reads))
        finally:
            connection.close()

    def _next_batch(self) -> list[_Call] | None:
        """What is queued (waiting for the first), callers already gone left out; None: stop."""
        first = self._queue.get()
        if first is None:
            return None
        calls = [first]
        while len(calls) < BATCH_LIMIT:
            try:
                call = self._queue.get_nowait()
            except queue.Empty:
                break
            if call is None:
                self._queue.put(None)  # stop after this batch
                break
            calls.append(call)
        return [call for call in calls if not call.done.cancelled()]


def _run_writes(
    connection: sqlite3.Connection, db: InlineConnection, batch: list[_Call]
) -> list[_Outcome]:
    """Every write of the batch in one transaction, each in a savepoint; one commit."""
    try:
        connection.execute("BEGIN IMMEDIATE")
        try:
            outcomes = [_run_write(connection, db, call.body) for call in batch]
            connection.commit()
        except BaseException:
            if connection.in_transaction:
                connection.rollback()
            raise
    except BaseException as exc:
        log.warning("store batch of %d writes failed: %r", len(batch), exc)
        return [_Outcome(error=exc)] * len(batch)
    return outcomes


def _run_write(connection: sqlite3.Connection, db: InlineConnection, body: Body) -> _Outcome:
    connection.execute("SAVEPOINT one")
    try:
        outcome = _Outcome(value=run_inline(awaited(body(db))))
    except Exception as exc:
        if not connection.in_transaction:
            raise  # SQLite ended the whole transaction itself: the batch fails
        connection.execute("ROLLBACK TO one")
        outcome = _Outcome(error=exc)
    connection.execute("RELEASE one")
    return outcome


def _run_reads(
    connection: sqlite3.Connection, db: InlineConnection, batch: list[_Call]
) -> list[_Outcome]:
    """Every read of the batch in one read transaction (one snapshot)."""
    outcomes: list[_Outcome] = []
    try:
        connection.execute("BEGIN")
        try:
            for call in batch:
                try:
                    outcomes.append(_Outcome(value=run_inline(awaited(call.body(db)))))
                except Exception as exc:
                    outcomes.append(_Outcome(error=exc))
        finally:
            if connection.in_transaction:
                connection.rollback()
    except BaseException as exc:
        log.warning("store batch of %d reads failed: %r", len(batch), exc)
        return [_Outcome(error=exc)] * len(batch)
    return outcomes


def _deliver_soon(batch: list[_Call], outcomes: list[_Outcome]) -> None:
    """Hand a batch's answers to the loop (normally the one) its callers wait on, in one call."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Call, _Outcome]]] = {}
    for call, outcome in zip(batch, outcomes, strict=True):
        by_loop.setdefault(call.done.get_loop(), []).append((call, outcome))
    for loop, answers in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            loop.call_soon_threadsafe(_deliver, answers)


def _deliver(answers: list[tuple[_Call, _Outcome]]) -> None:
    for call, outcome in answers:
        if call.done.done():
            continue  # its caller was cancelled while the batch ran
        if outcome.error is not None:
            call.done.set_exception(outcome.error)
        else:
            call.done.set_result(outcome.value)
