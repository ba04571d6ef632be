"""The SQLite store: every query the bot runs, behind named methods."""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.errors import JobNotFound
from bot.models import FAILURE_STATES, PROGRESS_STATES, JobRecord, JobState
from bot.store.signals import LocalSignals
from bot.store.sqlite.approvals import ApprovalMixin
from bot.store.sqlite.batches import GroupCommit
from bot.store.sqlite.budgets import BudgetMixin
from bot.store.sqlite.inline import Db
from bot.store.sqlite.leases import LeaseMixin
from bot.store.sqlite.moderation import ModerationMixin
from bot.store.sqlite.reports import ReportMixin
from bot.store.sqlite.rows import (
    JOB_COLUMNS,
    OPEN,
    job_from_row,
    to_text,
)
from bot.store.sqlite.schema import apply_migrations, load_migrations

__all__ = ["SqliteStore"]

# A write by a job's runner names its owner: a process that lost the lease changes nothing.
OWNED = " AND (:owner IS NULL OR owner = :owner)"

log = logging.getLogger(__name__)

T = TypeVar("T")


class SqliteStore(
    ApprovalMixin, BudgetMixin, LeaseMixin, ModerationMixin, ReportMixin, LocalSignals
):
    """Jobs, the usage ledger and each server's moderation settings in one SQLite file.

    The hot paths (a job's every step, admission, leases) run each transaction batched with
    the others queued, committed on a thread of its own (see ``batches``). The
    colder ones (moderators' settings, reports) use one aiosqlite connection shared by
    every coroutine, each method holding an asyncio lock for its whole run so statements of
    concurrent calls never mix inside one transaction. Writes run in
    ``BEGIN IMMEDIATE``, so a write on one connection waits (up to the busy timeout) for
    the other's, and another process on the same file waits likewise instead of reading
    budgets that are about to change.

    One process per database file: its signals stay inside the process.
    """

    def __init__(self, db: aiosqlite.Connection, batches: GroupCommit, lock: asyncio.Lock) -> None:
        """Wrap an open, migrated connection. Use :meth:`open` instead."""
        LocalSignals.__init__(self)
        self._db = db
        self._batches = batches
        self._lock = lock

    @classmethod
    @asynccontextmanager
    async def open(
        cls, path: str | Path, *, busy_timeout: float = 10.0
    ) -> AsyncIterator[SqliteStore]:
        """Connect to ``path``, set the pragmas, apply pending migrations; close on exit.

        The parent folder is created when missing. ``busy_timeout`` (seconds) is how long a
        write waits for another process holding the file's write lock.
        """
        path = Path(path)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        migrations = await asyncio.to_thread(load_migrations)
        # isolation_level=None: no implicit BEGINs; the store opens its own transactions.
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            db.row_factory = aiosqlite.Row
            # The busy timeout comes first: switching to WAL needs the lock another
            # process may be holding while it starts up on the same file.
            await db.execute(f"PRAGMA busy_timeout = {round(busy_timeout * 1000):d}")
            row = await _switch_to_wal(db, busy_timeout)
            if row is None or str(row[0]).lower() != "wal":
                raise RuntimeError(f"could not switch {path} to WAL journal mode (got {row})")
            await db.execute("PRAGMA foreign_keys = ON")
            # Deleted rows are overwritten, so a forgotten member's prompts leave the file.
            await db.execute("PRAGMA secure_delete = ON")
            # FULL: a committed charge or delivery must survive a power cut, not only a crash.
            await db.execute("PRAGMA synchronous = FULL")
            version = await apply_migrations(db, migrations)
            log.info("opened store %s at schema version %d", path, version)
            lock = asyncio.Lock()
            batches = await asyncio.to_thread(
                GroupCommit.open, path, busy_timeout=busy_timeout, lock=lock
            )
            try:
                yield cls(db, batches, lock)
            finally:
                await batches.close()
        finally:
            await db.close()

    # -- transactions ----------------------------------------------------------------------

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """Hold the lock and one ``BEGIN IMMEDIATE`` transaction; commit, or roll back on error."""
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                await self._db.commit()
            except BaseException:
                # Shielded so a cancelled caller still ends the transaction before the lock
                # is handed on. rollback() is a no-op when no transaction is open (BEGIN
                # failed, or COMMIT finished just as the caller was cancelled).
                await asyncio.shield(self._db.rollback())
                raise

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[aiosqlite.Connection]:
        """Hold the lock and one read transaction, so several queries see one snapshot."""
        async with self._lock:
            try:
                await self._db.execute("BEGIN")
                yield self._db
            finally:
                await asyncio.shield(self._db.rollback())

    async def _inline_write(self, body: Callable[[Db], Awaitable[T]]) -> T:
        """``body`` as one write transaction, committed with its batch (see ``batches``)."""
        return await self._batches.write(body)

    async def _inline_read(self, body: Callable[[Db], Awaitable[T]]) -> T:
        """``body`` as one read (one snapshot), after the writes asked for before it."""
        return await self._batches.read(body)

    async def _fetch_job(self, db: Db, job_id: int) -> JobRecord | None:
        async with db.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)) as cur:
            row = await cur.fetchone()
        return None if row is None else job_from_row(row)

    async def _require_job(self, db: Db, job_id: int) -> JobRecord:
        job = await self._fetch_job(db, job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def _update_job(self, db: Db, job_id: int, sql: str, params: Mapping[str, Any]) -> bool:
        """Run an UPDATE of one job; True when it changed the row, JobNotFound if none exists."""
        async with db.execute(sql, {**params, "id": job_id}) as cursor:
            changed = cursor.rowcount > 0
        if not changed:
            await self._require_job(db, job_id)
        return changed

    # -- schema and installation facts ----------------------------------------------------

    async def schema_version(self) -> int:
        """The applied migration version (``PRAGMA user_version``)."""
        async with self._lock, self._db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async def get_meta(self, key: str) -> str | None:
        """A stored installation fact (for example the last command-sync hash), or None."""
        async with (
            self._lock,
            self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)) as cursor,
        ):
            row = await cursor.fetchone()
        return None if row is None else str(row[0])

    async def set_meta(self, key: str, value: str) -> None:
        """Store an installation fact, replacing any previous value."""
        async with self._write() as db:
            await db.execute(
                "INSERT INTO meta (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (key, value, to_text(datetime.now(UTC))),
            )

    # -- quota -----------------------------------------------------------------------------

    # -- job life cycle --------------------------------------------------------------------

    async def get_job(self, job_id: int) -> JobRecord | None:
        """The job with this id, or None."""
        return await self._inline_read(lambda db: self._fetch_job(db, job_id))

    async def mark_submitting(
        self, job_id: int, now: datetime, *, owner: str | None = None
    ) -> bool:
        """ACCEPTED -> SUBMITTING, just before the one submit call.

        Returns False, changing nothing, when the job is no longer ACCEPTED (for example it
        was cancelled while waiting for a provider slot): the caller must not submit it.
        """
        return await self._inline_write(
            lambda db: self._update_job(
                db,
                job_id,
                "UPDATE jobs SET state = 'submitting', updated_at = :now "
                f"WHERE id = :id AND state = 'accepted'{OWNED}",
                {"now": to_text(now), "owner": owner},
            )
        )

    async def set_submission(
        self,
        job_id: int,
        *,
        request_id: str,
        status_url: str,
        result_url: str,
        cancel_url: str,
        now: datetime,
    ) -> JobRecord:
        """Record the provider's request id and URLs; the job becomes QUEUED.

        The ids are kept whatever the state, so support can trace the request; the state
        moves to QUEUED only from ACCEPTED, SUBMITTING or UNKNOWN_SUBMISSION, never out of
        a later or terminal state. Check the returned record's state.
        """

        async def record(db: Db) -> JobRecord:
            await self._update_job(
                db,
                job_id,
                "UPDATE jobs SET request_id = :request_id, status_url = :status_url, "
                "result_url = :result_url, cancel_url = :cancel_url, submitted_at = :now, "
                "updated_at = :now, state = CASE WHEN state IN "
                "('accepted', 'submitting', 'unknown_submission') THEN 'queued' ELSE state END "
                "WHERE id = :id",
                {
                    "request_id": request_id,
                    "status_url": status_url,
                    "result_url": result_url,
                    "cancel_url": cancel_url,
                    "now": to_text(now),
                },
            )
            return await self._require_job(db, job_id)

        job = await self._inline_write(record)
        log.info("job %d submitted as request %s (state %s)", job_id, request_id, job.state)
        return job

    async def set_progress(
        self,
        job_id: int,
        state: JobState,
        *,
        queue_position: int | None,
        now: datetime,
        owner: str | None = None,
    ) -> JobRecord | None:
        """Record QUEUED/RUNNING/DELIVERING and the queue position; the job as stored.

        ``started_at`` is set the first time the job is seen RUNNING (or DELIVERING, if the
        provider finished between two polls). Returns None, changing nothing, once the job
        is terminal: a late poll never revives a cancelled job.
        """
        if state not in PROGRESS_STATES:
            raise ValueError(f"set_progress takes queued, running or delivering, not {state}")
        started = state in (JobState.RUNNING, JobState.DELIVERING)

        async def record(db: Db) -> JobRecord | None:
            async with db.execute(
                "UPDATE jobs SET state = :state, queue_position = :position, updated_at = :now, "
                "started_at = CASE WHEN :started THEN COALESCE(started_at, :now) "
                f"ELSE started_at END WHERE id = :id AND {OPEN}{OWNED} RETURNING {JOB_COLUMNS}",
                {
                    "id": job_id,
                    "state": state.value,
                    "position": queue_position,
                    "started": started,
                    "now": to_text(now),
                    "owner": owner,
                },
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                await self._require_job(db, job_id)
                return None
            return job_from_row(row)

        return await self._inline_write(record)

    async def set_status_message(
        self, job_id: int, message_id: int | None, *, now: datetime | None = None
    ) -> None:
        """Remember (or forget, with None) the channel message that shows the job's status."""
        await self._inline_write(
            lambda db: self._update_job(
                db,
                job_id,
                "UPDATE jobs SET status_message_id = :message_id, updated_at = :now WHERE id = :id",
                {"message_id": message_id, "now": to_text(now or datetime.now(UTC))},
            )
        )

    async def set_provider_cost(
        self, job_id: int, cost_usd: float, *, now: datetime | None = None
    ) -> None:
        """Record what the provider charged for the job (USD), on the job and its ledger row."""
        if not math.isfinite(cost_usd) or cost_usd < 0:
            raise ValueError(f"not a cost: {cost_usd!r}")

        async def record(db: Db) -> None:
            await self._update_job(
                db,
                job_id,
                "UPDATE jobs SET cost_usd = :cost, updated_at = :now WHERE id = :id",
                {"cost": cost_usd, "now": to_text(now or datetime.now(UTC))},
            )
            await db.execute(
                "UPDATE usage_ledger SET cost_usd = ? WHERE job_id = ?", (cost_usd, job_id)
            )

        # In one call, like the rest of the job path: it comes just before a video is posted.
        await self._inline_write(record)

    async def set_video_url(self, job_id: int, url: str, *, now: datetime | None = None) -> None:
        """Remember the provider's output URL, so a restart can deliver without asking again."""
        await self._inline_write(
            lambda db: self._update_job(
                db,
                job_id,
                "UPDATE jobs SET video_url = :url, updated_at = :now WHERE id = :id",
                {"url": url, "now": to_text(now or datetime.now(UTC))},
            )
        )

    async def mark_unknown_submission(
        self, job_id: int, *, error: str, now: datetime, owner: str | None = None
    ) -> bool:
        """The submit call's outcome is unknown: UNKNOWN_SUBMISSION, credits stay reserved.

        Returns False, changing nothing, if the job is already terminal.
        """
        changed = await self._inline_write(
            lambda db: self._update_job(
                db,
                job_id,
                "UPDATE jobs SET state = 'unknown_submission', error = :error, "
                f"queue_position = NULL, updated_at = :now WHERE id = :id AND {OPEN}{OWNED}",
                {"error": error, "now": to_text(now), "owner": owner},
            )
        )
        if changed:
            log.warning("job %d: submission outcome unknown: %s", job_id, error)
        return changed

    async def finish_delivered(
        self,
        job_id: int,
        *,
        result_message_id: int | None,
        now: datetime,
        owner: str | None = None,
    ) -> bool:
        """Job -> DELIVERED and its reservation -> committed, in one transaction.

        Returns False, changing nothing, if the job was already terminal, so a job is
        delivered and charged at most once.
        """
        stamp = to_text(now)

        async def settle(db: Db) -> bool:
            changed = await self._update_job(
                db,
                job_id,
                "UPDATE jobs SET state = 'delivered', result_message_id = :message_id, "
                "queue_position = NULL, finished_at = :now, updated_at = :now, owner = NULL, "
                f"lease_until = NULL WHERE id = :id AND {OPEN}{OWNED}",
                {"message_id": result_message_id, "now": stamp, "owner": owner},
            )
            if changed:
                await db.execute(
                    "UPDATE usage_ledger SET state = 'committed', settled_at = ? "
                    "WHERE job_id = ? AND state = 'reserved'",
                    (stamp, job_id),
                )
            return changed

        changed = await self._inline_write(settle)
        if changed:
            log.info("job %d delivered; credits committed", job_id)
        return changed

    async def finish_failed(
        self,
        job_id: int,
        state: JobState,
        *,
        error: str,
        now: datetime,
        owner: str | None = None,
    ) -> bool:
        """Job -> FAILED, CANCELLED or TIMED_OUT and its reservation released, in one transaction.

        Also how an UNKNOWN_SUBMISSION is resolved once its deadline passes. Returns False,
        changing nothing, if the job was already terminal: a delivered job is never un-charged.
        """
        if state not in FAILURE_STATES:
            raise ValueError(f"finish_failed takes failed, cancelled or timed_out, not {state}")
        return await self._release(
            job_id, state, error=error, now=now, where=f"{OPEN}{OWNED}", owner=owner
        )

    async def cancel_unsent(self, job_id: int, *, error: str, now: datetime) -> bool:
        """ACCEPTED -> CANCELLED and its reservation released, whoever holds the job.

        Returns False, changing nothing, once the job left ACCEPTED: a job whose submit
        started is never ended here (the submit's own guard, ``mark_submitting``, is the other
        half: of the two, exactly one happens).
        """
        return await self._release(
            job_id, JobState.CANCELLED, error=error, now=now, where="state = 'accepted'"
        )

    async def _release(
        self,
        job_id: int,
        state: JobState,
        *,
        error: str,
        now: datetime,
        where: str,
        owner: str | None = None,
    ) -> bool:
        stamp = to_text(now)

        async def settle(db: Db) -> bool:
            changed = await self._update_job(
                db,
                job_id,
                "UPDATE jobs SET state = :state, error = :error, queue_position = NULL, "
                "finished_at = :now, updated_at = :now, owner = NULL, lease_until = NULL "
                f"WHERE id = :id AND {where}",
                {"state": state.value, "error": error, "now": stamp, "owner": owner},
            )
            if changed:
                await db.execute(
                    "UPDATE usage_ledger SET state = 'released', settled_at = ? "
                    "WHERE job_id = ? AND state = 'reserved'",
                    (stamp, job_id),
                )
            return changed

        changed = await self._inline_write(settle)
        if changed:
            log.info("job %d %s; credits released: %s", job_id, state, error)
        return changed


async def _switch_to_wal(db: aiosqlite.Connection, patience: float) -> Any:
    """Set WAL mode, retrying: SQLite skips the busy handler when two connections race to
    change the journal mode of a fresh file, and answers "database is locked" at once."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + patience
    while True:
        try:
            async with db.execute("PRAGMA journal_mode = WAL") as cursor:
                return await cursor.fetchone()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or loop.time() >= give_up:
                raise
            await asyncio.sleep(0.05)
