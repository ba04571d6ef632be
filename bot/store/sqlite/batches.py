"""Group commit: the store's hot-path transactions, many to one batch and one commit.

Every step of a job's path (admitting it, claiming it, marking its submission, recording its
progress, settling it) is a short transaction: a few statements, a fraction of a millisecond
of SQL, then a ``synchronous = FULL`` commit that waits for the disk. Run one at a time on a
worker thread, each cost far more than its SQL: the trip to the thread and back through a busy
event loop, and, worst, the thread taking the GIL back from the loop after every statement
(SQLite releases it for each step; on a busy process each retake can wait a whole switch
interval). Under a burst the store's calls queued for hundreds of milliseconds.

So the statements run on the event loop itself, where they cost only their SQL, and only the
commit (the wait for the disk) goes to a thread. Calls made while a commit is under way wait
together for the next batch: the writes in one ``BEGIN IMMEDIATE``, each inside a savepoint of
its own, one commit; then the reads, in one snapshot. A batch runs its bodies for at most
``STALL_SECONDS`` of the loop's time; what is left goes in the next one.

The guarantees are a single transaction's, in the order of the calls: each write sees the
writes queued before it, a write that raises is rolled back alone and its caller gets the
exception, no caller hears of a write before the commit that makes it durable (when the
commit fails, every writer of the batch gets that error and nothing of it is kept), and a
read sees every write asked for before it. A batch holds the store's lock, so it never
overlaps a transaction on the store's other connection; if another process holds the file's
write lock, the batch runs on the thread instead, waiting for it up to the busy timeout. A
caller cancelled before its batch starts is left out; one cancelled later sees its
transaction commit all the same, as with any awaited write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bot.store.sqlite.inline import Body, Db, InlineConnection, awaited, run_inline

__all__ = ["READ_STALL_SECONDS", "STALL_SECONDS", "GroupCommit"]

log = logging.getLogger(__name__)

T = TypeVar("T")

STALL_SECONDS = 0.004
"""The loop's time one batch's writes may take before the rest wait for the next batch."""
READ_STALL_SECONDS = 0.004
"""Likewise for its reads."""
_RETRY_SECONDS = 0.005
"""How often the thread tries again for a write lock another process holds."""


@dataclass(slots=True)
class _Call:
    body: Body
    writes: bool
    done: asyncio.Future[Any]


@dataclass(slots=True)
class _Outcome:
    value: Any = None
    error: BaseException | None = None


class GroupCommit:
    """The store's hot-path connection: batches of transactions, committed on a thread."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        pool: ThreadPoolExecutor,
        lock: asyncio.Lock,
        busy_timeout: float,
    ) -> None:
        self.connection = connection
        """The connection (for tests that plant faults inside SQLite itself)."""
        self._db = InlineConnection(connection)
        self._pool = pool
        self._lock = lock
        self._busy_timeout = busy_timeout
        self._pending: list[_Call] = []
        self._runner: asyncio.Task[None] | None = None

    @classmethod
    def open(cls, path: Path, *, busy_timeout: float, lock: asyncio.Lock) -> GroupCommit:
        """Connect (the file is already in WAL mode and migrated). Blocks: call it off the loop.

        The connection never waits for a lock inside SQLite (``busy_timeout = 0``): a batch
        that finds the file locked runs on the thread, which waits (see ``_begin``).
        """
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-commit")
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA busy_timeout = 0")
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("PRAGMA secure_delete = ON")
        connection.execute("PRAGMA synchronous = FULL")
        return cls(connection, pool, lock, busy_timeout)

    async def write(self, body: Callable[[Db], Awaitable[T]]) -> T:
        """``body`` as one write transaction of the next batch; its value, or what it raised."""
        result: T = await self._enqueue(body, writes=True)
        return result

    async def read(self, body: Callable[[Db], Awaitable[T]]) -> T:
        """``body`` as a read of the next batch (one snapshot, after the batch's writes)."""
        result: T = await self._enqueue(body, writes=False)
        return result

    async def close(self) -> None:
        """Finish what is queued, then close the connection and the thread."""
        while self._runner is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._runner)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self.connection.close)
        self._pool.shutdown(wait=True)

    async def _enqueue(self, body: Body, *, writes: bool) -> Any:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append(_Call(body, writes, done))
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="store-batches")
        return await done

    async def _run(self) -> None:
        """Batch after batch until nothing is queued."""
        calls: list[_Call] = []
        try:
            while self._pending:
                calls = [call for call in self._pending if not call.done.cancelled()]
                self._pending.clear()
                async with self._lock:
                    await self._one_batch(calls)
        except BaseException:
            # Stopped from outside (the loop is closing): nobody is left waiting, neither in
            # the batch under way (its commit has ended, one way or the other) nor after it.
            stopped = _Outcome(error=asyncio.CancelledError())
            _answer([(call, stopped) for call in calls + self._pending])
            self._pending.clear()
            raise
        finally:
            self._runner = None

    async def _one_batch(self, calls: list[_Call]) -> None:
        writes = [call for call in calls if call.writes]
        later: list[_Call] = []
        if writes:
            ran = await self._writes(writes)
            if len(ran) < len(writes):
                # Out of time: the writes not run go in the next batch, and so does every
                # read asked for after the first of them (it must see it).
                cut = calls.index(writes[len(ran)])
                later = calls[cut:]
                calls = calls[:cut]
        reads = [call for call in calls if not call.writes]
        if reads:
            try:
                ran_reads = self._reads_here(reads)
                if ran_reads is None:
                    ran_reads = await self._in_thread(self._reads_there, reads)
            except Exception as exc:
                ran_reads = [_Outcome(error=exc)] * len(reads)
            later[:0] = reads[len(ran_reads) :]
            _answer(list(zip(reads, ran_reads, strict=False)))
        self._pending[:0] = later

    async def _writes(self, writes: list[_Call]) -> list[_Outcome]:
        """Run the writes' SQL here and commit on the thread; those run, answered."""
        connection = self.connection
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not _locked(exc):
                _answer([(call, _Outcome(error=exc)) for call in writes])
                return [_Outcome(error=exc)] * len(writes)
            # Another process writes: wait for it on the thread, not here.
            outcomes = await self._in_thread(self._writes_there, writes)
            _answer(list(zip(writes, outcomes, strict=True)))
            return outcomes
        try:
            outcomes = _bodies(connection, self._db, writes, time.perf_counter() + STALL_SECONDS)
        except BaseException as exc:
            connection.rollback()
            _answer([(call, _Outcome(error=exc)) for call in writes])
            if not isinstance(exc, Exception):
                raise
            return [_Outcome(error=exc)] * len(writes)
        ran = writes[: len(outcomes)]
        try:
            await self._in_thread(_commit, connection)
        except Exception as exc:
            log.warning("store batch of %d writes failed to commit: %r", len(ran), exc)
            outcomes = [_Outcome(error=exc)] * len(ran)
        _answer(list(zip(ran, outcomes, strict=True)))
        return outcomes

    def _writes_there(self, writes: list[_Call]) -> list[_Outcome]:
        """On the thread: every write, once the file's write lock is ours; one commit."""
        connection = self.connection
        try:
            self._begin(connection)
            try:
                outcomes = _bodies(connection, self._db, writes, None)
                connection.commit()
            except BaseException:
                if connection.in_transaction:
                    connection.rollback()
                raise
        except Exception as exc:
            log.warning("store batch of %d writes failed: %r", len(writes), exc)
            return [_Outcome(error=exc)] * len(writes)
        return outcomes

    def _begin(self, connection: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``, trying again while another process holds the write lock."""
        give_up = time.monotonic() + self._busy_timeout
        while True:
            try:
                connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _locked(exc) or time.monotonic() >= give_up:
                    raise
            time.sleep(_RETRY_SECONDS)

    def _reads_here(self, reads: list[_Call]) -> list[_Outcome] | None:
        """The reads in one snapshot, for at most the stall budget; None when the file was
        locked (WAL reads wait only while a crashed writer's log is recovered)."""
        connection = self.connection
        outcomes: list[_Outcome] = []
        try:
            connection.execute("BEGIN")
            outcomes = _reads(self._db, reads, time.perf_counter() + READ_STALL_SECONDS)
        finally:
            if connection.in_transaction:
                connection.rollback()
        if any(
            isinstance(o.error, sqlite3.OperationalError) and _locked(o.error) for o in outcomes
        ):
            return None
        return outcomes

    def _reads_there(self, reads: list[_Call]) -> list[_Outcome]:
        """On the thread: the reads in one snapshot, waiting out a lock."""
        connection = self.connection
        give_up = time.monotonic() + self._busy_timeout
        while True:
            connection.execute("BEGIN")
            try:
                outcomes = _reads(self._db, reads, None)
            finally:
                connection.rollback()
            locked = any(
                isinstance(o.error, sqlite3.OperationalError) and _locked(o.error) for o in outcomes
            )
            if not locked or time.monotonic() >= give_up:
                return outcomes
            time.sleep(_RETRY_SECONDS)

    async def _in_thread(self, work: Callable[[Any], T], arg: Any) -> T:
        """``work(arg)`` on the thread. The connection is the thread's until it ends: a
        cancelled caller waits for it before handing the lock on."""
        done = asyncio.get_running_loop().run_in_executor(self._pool, work, arg)
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await done
            raise


def _bodies(
    connection: sqlite3.Connection, db: InlineConnection, calls: list[_Call], until: float | None
) -> list[_Outcome]:
    """Write bodies in order, each in a savepoint, until the time ``until`` (at least one)."""
    outcomes: list[_Outcome] = []
    for call in calls:
        if outcomes and until is not None and time.perf_counter() > until:
            break
        connection.execute("SAVEPOINT one")
        try:
            outcome = _Outcome(value=run_inline(awaited(call.body(db))))
        except Exception as exc:
            if not connection.in_transaction:
                raise  # SQLite ended the whole transaction itself: the batch fails
            connection.execute("ROLLBACK TO one")
            outcome = _Outcome(error=exc)
        connection.execute("RELEASE one")
        outcomes.append(outcome)
    return outcomes


def _reads(db: InlineConnection, calls: list[_Call], until: float | None) -> list[_Outcome]:
    """Read bodies in order until the time ``until`` (at least one)."""
    outcomes: list[_Outcome] = []
    for call in calls:
        if outcomes and until is not None and time.perf_counter() > until:
            break
        try:
            outcomes.append(_Outcome(value=run_inline(awaited(call.body(db)))))
        except Exception as exc:
            outcomes.append(_Outcome(error=exc))
    return outcomes


def _commit(connection: sqlite3.Connection) -> None:
    """On the thread: the commit (the wait for the disk), or the rollback when it fails."""
    try:
        connection.commit()
    except BaseException:
        if connection.in_transaction:
            connection.rollback()
        raise


def _locked(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _any_locked(outcomes: list[_Outcome]) -> bool:
    return any(isinstance(o.error, sqlite3.OperationalError) and _locked(o.error) for o in outcomes)


def _answer(answers: list[tuple[_Call, _Outcome]]) -> None:
    for call, outcome in answers:
        if call.done.done():
            continue  # its caller was cancelled while the batch ran
        if isinstance(outcome.error, asyncio.CancelledError):
            call.done.cancel()
        elif outcome.error is not None:
            call.done.set_exception(outcome.error)
        else:
            call.done.set_result(outcome.value)
