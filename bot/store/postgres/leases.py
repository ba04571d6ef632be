"""Who drives each open job: leases, claimed atomically and renewed by their owner.

A job is claimable when it is open, not waiting for a moderator, and its lease has run out (or
it never had one). Claiming and renewing are single conditional UPDATEs: when two processes
claim one job at once, PostgreSQL makes the second wait for the first's row lock and then
re-checks the condition on the row as the first left it, so only one of them gets it.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from bot.models import JobRecord
from bot.store.postgres.guild_sql import StoreCore
from bot.store.postgres.rows import JOB_COLUMNS, RUNNABLE_STATES, job_from_row, opt_utc, utc
from bot.store.postgres.signals import notify

__all__ = ["LeaseMixin"]


class LeaseMixin(StoreCore):
    """Job leases; mixed into the PostgreSQL store."""

    async def claim_job(
        self, job_id: int, *, owner: str, until: datetime, now: datetime
    ) -> JobRecord | None:
        """Take the lease of a runnable job whose lease ran out, or that ``owner`` holds.

        Returns the job as claimed, or None when another live owner holds it or it ended.
        """
        async with self._write() as conn:
            row = await conn.fetchrow(
                "UPDATE jobs SET owner = $2, lease_until = $3 WHERE id = $1 "
                f"AND state IN ({RUNNABLE_STATES}) AND (owner = $2 OR lease_until IS NULL "
                f"OR lease_until < $4) RETURNING {JOB_COLUMNS}",
                job_id,
                owner,
                utc(until),
                utc(now),
            )
        return None if row is None else job_from_row(row)

    async def renew_leases(
        self, owner: str, job_ids: Collection[int], *, until: datetime
    ) -> set[int]:
        """Extend the leases ``owner`` still holds among ``job_ids``; the ids renewed."""
        if not job_ids:
            return set()
        async with self._write() as conn:
            rows = await conn.fetch(
                "UPDATE jobs SET lease_until = $1 WHERE owner = $2 AND id = ANY($3::bigint[]) "
                f"AND state IN ({RUNNABLE_STATES}) RETURNING id",
                utc(until),
                owner,
                sorted(job_ids),
            )
        return {int(row[0]) for row in rows}

    async def claimable_jobs(self, now: datetime, *, limit: int = 100) -> list[JobRecord]:
        """Runnable jobs nobody holds (lease run out or never taken), oldest first."""
        async with self._read() as conn:
            rows = await conn.fetch(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE state IN ({RUNNABLE_STATES}) "
                "AND (lease_until IS NULL OR lease_until < $1) ORDER BY created_at, id LIMIT $2",
                utc(now),
                limit,
            )
        return [job_from_row(row) for row in rows]

    async def release_lease(
        self, job_id: int, *, owner: str, retry_at: datetime | None = None
    ) -> bool:
        """Hand a job back: nobody holds it, and any process may claim it from ``retry_at``
        (at once when None: the other processes are woken to take it)."""
        async with self._write() as conn:
            released = await conn.fetchval(
                "UPDATE jobs SET owner = NULL, lease_until = $3 WHERE id = $1 AND owner = $2 "
                "RETURNING id",
                job_id,
                owner,
                opt_utc(retry_at),
            )
            if released is not None:
                await notify(conn, "slots")
                if retry_at is None:
                    await notify(conn, "jobs")
        return released is not None

    async def record_crash(
        self, job_id: int, *, owner: str, retry_at: datetime, now: datetime
    ) -> int:
        """Count a run of the job that ended in an unforeseen error and hand it back until
        ``retry_at``; the job's attempts so far (0 when ``owner`` no longer holds it)."""
        async with self._write() as conn:
            attempts = await conn.fetchval(
                "UPDATE jobs SET attempts = attempts + 1, owner = NULL, lease_until = $3, "
                "updated_at = $4 WHERE id = $1 AND owner = $2 RETURNING attempts",
                job_id,
                owner,
                utc(retry_at),
                utc(now),
            )
            if attempts is not None:
                await notify(conn, "slots")
        return 0 if attempts is None else int(attempts)

    async def mark_posting(self, job_id: int, *, owner: str, now: datetime) -> bool:
        """Record that posting the video starts now (so a restart looks for the post first)."""
        async with self._write() as conn:
            marked = await conn.fetchval(
                "UPDATE jobs SET posting_at = $3, updated_at = $3 WHERE id = $1 AND owner = $2 "
                "AND state = 'delivering' RETURNING id",
                job_id,
                owner,
                utc(now),
            )
        return marked is not None

    async def mark_final_shown(self, job_id: int, *, now: datetime) -> None:
        """The settled job's status message now shows how it ended (no-op for an open job)."""
        async with self._connection() as conn:
            await conn.execute(
                "UPDATE jobs SET final_shown_at = $2 WHERE id = $1 AND finished_at IS NOT NULL",
                job_id,
                utc(now),
            )

    async def unshown_endings(self, since: datetime, *, limit: int = 50) -> list[JobRecord]:
        """Jobs settled since ``since`` whose status message was never seen showing the end,
        oldest first."""
        async with self._connection() as conn:
            rows = await conn.fetch(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE final_shown_at IS NULL "
                "AND finished_at IS NOT NULL AND finished_at >= $1 "
                "AND status_message_id IS NOT NULL ORDER BY finished_at, id LIMIT $2",
                utc(since),
                limit,
            )
        return [job_from_row(row) for row in rows]
