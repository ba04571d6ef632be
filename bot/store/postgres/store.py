"""The PostgreSQL store: every query the bot runs, behind named methods."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bot.errors import JobNotFound
from bot.models import FAILURE_STATES, PROGRESS_STATES, JobRecord, JobState
from bot.store.coordination import SignalHandler
from bot.store.postgres.admission import AdmissionMixin
from bot.store.postgres.approvals import ApprovalMixin
from bot.store.postgres.budgets import BudgetMixin
from bot.store.postgres.connect import connect_pool
from bot.store.postgres.guild_sql import begin_locked
from bot.store.postgres.leases import LeaseMixin
from bot.store.postgres.moderation import ModerationMixin
from bot.store.postgres.reports import ReportMixin
from bot.store.postgres.reservations import ReservationMixin
from bot.store.postgres.rows import (
    JOB_COLUMNS,
    OPEN,
    Conn,
    job_from_row,
    now_or,
    time_of,
    utc,
)
from bot.store.postgres.schema import current_version
from bot.store.postgres.signals import Listener, notify
from bot.store.postgres.slots import SlotMixin

__all__ = ["PostgresStore"]

# A write by a job's runner names its owner: a process that lost the lease changes nothing.
OWNED = " AND ($2::text IS NULL OR owner = $2)"

log = logging.getLogger(__name__)


async def _roll_back(conn: Conn) -> None:
    """End the transaction a failed :meth:`PostgresStore._locked` left open; a connection
    that cannot is closed, and the pool opens another in its place."""
    if conn.is_closed() or not conn.is_in_transaction():
        return
    try:
        await conn.execute("ROLLBACK")
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        conn.terminate()


class PostgresStore(
    AdmissionMixin,
    ApprovalMixin,
    BudgetMixin,
    LeaseMixin,
    ModerationMixin,
    ReportMixin,
    ReservationMixin,
    SlotMixin,
):
    """Jobs, the usage ledger and each server's moderation settings in one PostgreSQL database.

    Several processes may share the database. Each method is one transaction on a connection
    of the pool: job transitions are single conditional statements; whatever checks a
    server's budgets or gates and then writes holds that server's advisory lock for its
    transaction (see ``guild_sql``), so no two processes ever spend the same credits.
    Writes run at READ COMMITTED, so each statement after the lock sees everything
    committed before it; reads of several statements run in one REPEATABLE READ snapshot.

    Waking other processes (a job handed back, a provider slot freed) fits the same shape: a
    ``pg_notify`` inside the transaction that made the change, so it is sent only on commit,
    and one listening connection per process (see ``signals``).
    """

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], url: str) -> None:
        """Wrap an open pool on a migrated database. Use :meth:`open` instead."""
        self._pool = pool
        self._listener = Listener(url)

    @classmethod
    @asynccontextmanager
    async def open(
        cls, url: str, *, min_size: int = 1, max_size: int = 10
    ) -> AsyncIterator[PostgresStore]:
        """Connect to ``url`` (a libpq URI), apply pending migrations; close the pool on exit.

        Raises :class:`~bot.store.postgres.connect.DatabaseUnavailable` with one line naming
        the problem (never the password) when the server cannot be reached, refuses the
        credentials, or holds a schema newer than this bot.
        """
        async with connect_pool(url, min_size=min_size, max_size=max_size) as pool:
            store = cls(pool, url)
            try:
                yield store
            finally:
                await store._listener.close()

    # -- transactions ----------------------------------------------------------------------

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[Conn]:
        """One READ COMMITTED transaction on a pooled connection; commit, or roll back on error."""
        async with self._pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            yield conn

    @asynccontextmanager
    async def _locked(self, guild_id: int) -> AsyncIterator[Conn]:
        """:meth:`_write` holding the server's lock from the start (:func:`begin_locked`: the
        BEGIN and the lock in one round trip); commit, or roll back on error."""
        async with self._pool.acquire() as conn:
            try:
                await conn.execute(begin_locked(guild_id))
                yield conn
            except BaseException:
                await _roll_back(conn)
                raise
            await conn.execute("COMMIT")

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[Conn]:
        """One read-only transaction, so several queries see one snapshot."""
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield conn

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        """A pooled connection outside any transaction, for one statement (one snapshot)."""
        async with self._pool.acquire() as conn:
            yield conn

    async def _fetch_job(self, conn: Conn, job_id: int) -> JobRecord | None:
        row = await conn.fetchrow(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1", job_id)
        return None if row is None else job_from_row(row)

    async def _require_job(self, conn: Conn, job_id: int) -> JobRecord:
        job = await self._fetch_job(conn, job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def _update_job(self, sql: str, job_id: int, *params: Any) -> bool:
        """Run one ``UPDATE jobs ... WHERE id = $1 ... RETURNING id`` in its own transaction;
        True when it changed the row, JobNotFound if no such job exists."""
        async with self._write() as conn:
            changed = await conn.fetchval(sql, job_id, *params) is not None
            if not changed:
                await self._require_job(conn, job_id)
        return changed

    async def _settle(
        self, sql: str, ledger_state: str, job_id: int, stamp: datetime, *params: Any
    ) -> bool:
        """End a job with ``sql`` and settle its reservation as ``ledger_state``, atomically;
        an ended job may free a provider slot, so the processes waiting for one are woken."""
        async with self._write() as conn:
            changed = await conn.fetchval(sql, job_id, *params) is not None
            if not changed:
                await self._require_job(conn, job_id)
                return False
            await conn.execute(
                "UPDATE usage_ledger SET state = $2, settled_at = $3 "
                "WHERE job_id = $1 AND state = 'reserved'",
                job_id,
                ledger_state,
                stamp,
            )
            await notify(conn, "slots")
        return True

    # -- signals ---------------------------------------------------------------------------

    async def send_signal(self, topic: str, text: str = "") -> None:
        """Tell every process on the database (this one included), by NOTIFY."""
        async with self._pool.acquire() as conn:
            await notify(conn, topic, text)

    async def listen(self, handler: SignalHandler) -> None:
        """Call ``handler`` for every signal from now on (``resync`` after a lost connection
        came back)."""
        await self._listener.add(handler)

    # -- schema and installation facts ----------------------------------------------------

    async def schema_version(self) -> int:
        """The applied migration version (the newest row of ``schema_migrations``)."""
        async with self._pool.acquire() as conn:
            return await current_version(conn)

    async def get_meta(self, key: str) -> str | None:
        """A stored installation fact (for example the last command-sync hash), or None."""
        value = await self._pool.fetchval("SELECT value FROM meta WHERE key = $1", key)
        return None if value is None else str(value)

    async def set_meta(self, key: str, value: str) -> None:
        """Store an installation fact, replacing any previous value."""
        await self._pool.execute(
            "INSERT INTO meta (key, value, updated_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            key,
            value,
            datetime.now(UTC),
        )

    # -- job life cycle --------------------------------------------------------------------

    async def get_job(self, job_id: int) -> JobRecord | None:
        """The job with this id, or None."""
        async with self._pool.acquire() as conn:
            return await self._fetch_job(conn, job_id)

    async def mark_submitting(
        self, job_id: int, now: datetime, *, owner: str | None = None
    ) -> bool:
        """ACCEPTED -> SUBMITTING, just before the one submit call.

        Returns False, changing nothing, when the job is no longer ACCEPTED (for example it
        was cancelled while waiting for a provider slot): the caller must not submit it.
        """
        return await self._update_job(
            "UPDATE jobs SET state = 'submitting', updated_at = $3 "
            f"WHERE id = $1 AND state = 'accepted'{OWNED} RETURNING id",
            job_id,
            owner,
            utc(now),
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
        async with self._write() as conn:
            row = await conn.fetchrow(
                "UPDATE jobs SET request_id = $2, status_url = $3, result_url = $4, "
                "cancel_url = $5, submitted_at = $6, updated_at = $6, state = CASE WHEN state IN "
                "('accepted', 'submitting', 'unknown_submission') THEN 'queued' ELSE state END "
                f"WHERE id = $1 RETURNING {JOB_COLUMNS}",
                job_id,
                request_id,
                status_url,
                result_url,
                cancel_url,
                utc(now),
            )
        if row is None:
            raise JobNotFound(job_id)
        job = job_from_row(row)
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
        async with self._write() as conn:
            row = await conn.fetchrow(
                "UPDATE jobs SET state = $3, queue_position = $4, updated_at = $5, "
                "started_at = CASE WHEN $6::boolean THEN COALESCE(started_at, $5) "
                f"ELSE started_at END WHERE id = $1 AND {OPEN}{OWNED} RETURNING {JOB_COLUMNS}",
                job_id,
                owner,
                state.value,
                queue_position,
                utc(now),
                started,
            )
            if row is None:
                await self._require_job(conn, job_id)
                return None
        return job_from_row(row)

    async def set_status_message(
        self, job_id: int, message_id: int | None, *, now: datetime | None = None
    ) -> None:
        """Remember (or forget, with None) the channel message that shows the job's status."""
        await self._update_job(
            "UPDATE jobs SET status_message_id = $2, updated_at = $3 WHERE id = $1 RETURNING id",
            job_id,
            message_id,
            now_or(now),
        )

    async def set_provider_cost(
        self, job_id: int, cost_usd: float, *, now: datetime | None = None
    ) -> None:
        """Record what the provider charged for the job (USD), on the job and its ledger row."""
        if not math.isfinite(cost_usd) or cost_usd < 0:
            raise ValueError(f"not a cost: {cost_usd!r}")
        async with self._write() as conn:
            changed = await conn.fetchval(
                "UPDATE jobs SET cost_usd = $2, updated_at = $3 WHERE id = $1 RETURNING id",
                job_id,
                cost_usd,
                now_or(now),
            )
            if changed is None:
                raise JobNotFound(job_id)
            await conn.execute(
                "UPDATE usage_ledger SET cost_usd = $2 WHERE job_id = $1", job_id, cost_usd
            )

    async def set_video_url(self, job_id: int, url: str, *, now: datetime | None = None) -> None:
        """Remember the provider's output URL, so a restart can deliver without asking again."""
        await self._update_job(
            "UPDATE jobs SET video_url = $2, updated_at = $3 WHERE id = $1 RETURNING id",
            job_id,
            url,
            now_or(now),
        )

    async def mark_unknown_submission(
        self, job_id: int, *, error: str, now: datetime, owner: str | None = None
    ) -> bool:
        """The submit call's outcome is unknown: UNKNOWN_SUBMISSION, credits stay reserved.

        Returns False, changing nothing, if the job is already terminal.
        """
        changed = await self._update_job(
            "UPDATE jobs SET state = 'unknown_submission', error = $3, queue_position = NULL, "
            f"updated_at = $4 WHERE id = $1 AND {OPEN}{OWNED} RETURNING id",
            job_id,
            owner,
            error,
            utc(now),
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
        stamp = utc(now)
        changed = await self._settle(
            "UPDATE jobs SET state = 'delivered', result_message_id = $3, queue_position = NULL, "
            "finished_at = $4, updated_at = $4, owner = NULL, lease_until = NULL "
            f"WHERE id = $1 AND {OPEN}{OWNED} RETURNING id",
            "committed",
            job_id,
            stamp,
            owner,
            result_message_id,
            stamp,
        )
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
        stamp = utc(now)
        changed = await self._settle(
            "UPDATE jobs SET state = $3, error = $4, queue_position = NULL, finished_at = $5, "
            "updated_at = $5, owner = NULL, lease_until = NULL "
            f"WHERE id = $1 AND {OPEN}{OWNED} RETURNING id",
            "released",
            job_id,
            stamp,
            owner,
            state.value,
            error,
            stamp,
        )
        if changed:
            log.info("job %d %s; credits released: %s", job_id, state, error)
        return changed

    async def cancel_unsent(self, job_id: int, *, error: str, now: datetime) -> bool:
        """ACCEPTED -> CANCELLED and its reservation released, whoever holds the job.

        Returns False, changing nothing, once the job left ACCEPTED: a job whose submit
        started is never ended here (the submit's own guard, ``mark_submitting``, is the other
        half: of the two, exactly one happens).
        """
        stamp = utc(now)
        changed = await self._settle(
            "UPDATE jobs SET state = 'cancelled', error = $2, queue_position = NULL, "
            "finished_at = $3, updated_at = $3, owner = NULL, lease_until = NULL "
            "WHERE id = $1 AND state = 'accepted' RETURNING id",
            "released",
            job_id,
            stamp,
            error,
            stamp,
        )
        if changed:
            log.info("job %d cancelled before it was sent; credits released: %s", job_id, error)
        return changed

    # -- queries ---------------------------------------------------------------------------

    async def recent_jobs(
        self, guild_id: int, member_id: int, *, limit: int = 10
    ) -> list[JobRecord]:
        """A member's latest jobs in a server, newest first."""
        rows = await self._pool.fetch(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE guild_id = $1 AND member_id = $2 "
            "ORDER BY id DESC LIMIT $3",
            guild_id,
            member_id,
            limit,
        )
        return [job_from_row(row) for row in rows]

    async def recent_run_seconds(
        self, resolution: str, duration: int, *, limit: int = 20
    ) -> list[float]:
        """Seconds from the start of generation to delivery of recent delivered jobs of this kind.

        Queue time is left out: the poller and the ETA count from when a job is seen running.
        """
        rows: Sequence[asyncpg.Record] = await self._pool.fetch(
            "SELECT started_at, finished_at FROM jobs WHERE state = 'delivered' "
            "AND resolution = $1 AND duration = $2 AND started_at IS NOT NULL "
            "ORDER BY finished_at DESC LIMIT $3",
            resolution,
            duration,
            limit,
        )
        return [(time_of(row[1]) - time_of(row[0])).total_seconds() for row in rows]
