"""Who drives each open job: leases, claimed atomically and renewed by their owner.

A job is claimable when it is open, not waiting for a moderator, and its lease has run out (or
it never had one). Claiming and renewing are single conditional UPDATEs, so two processes can
never both hold a job.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from datetime import datetime

from bot.models import JobRecord
from bot.store.sqlite.guild_sql import StoreCore
from bot.store.sqlite.inline import Db
from bot.store.sqlite.rows import JOB_COLUMNS, RUNNABLE_STATES, job_from_row, to_text

__all__ = ["LeaseMixin"]

_CLAIMABLE = f"state IN ({RUNNABLE_STATES}) AND (lease_until IS NULL OR lease_until < :now)"


class LeaseMixin(StoreCore):
    """Job leases; mixed into the SQLite store."""

    async def claim_job(
        self, job_id: int, *, owner: str, until: datetime, now: datetime
    ) -> JobRecord | None:
        """Take the lease of a runnable job whose lease ran out, or that ``owner`` holds.

        Returns the job as claimed, or None when another live owner holds it or it ended.
        """

        async def claim(db: Db) -> sqlite3.Row | None:
            async with db.execute(
                f"UPDATE jobs SET owner = :owner, lease_until = :until WHERE id = :id "
                f"AND state IN ({RUNNABLE_STATES}) AND (owner = :owner OR lease_until IS NULL "
                f"OR lease_until < :now) RETURNING {JOB_COLUMNS}",
                {"owner": owner, "until": to_text(until), "now": to_text(now), "id": job_id},
            ) as cursor:
                return await cursor.fetchone()

        row = await self._inline_write(claim)
        return None if row is None else job_from_row(row)

    async def renew_leases(
        self, owner: str, job_ids: Collection[int], *, until: datetime
    ) -> set[int]:
        """Extend the leases ``owner`` still holds among ``job_ids``; the ids renewed."""
        if not job_ids:
            return set()
        marks = ", ".join("?" for _ in job_ids)

        async def renew(db: Db) -> set[int]:
            async with db.execute(
                f"UPDATE jobs SET lease_until = ? WHERE owner = ? AND id IN ({marks}) "
                f"AND state IN ({RUNNABLE_STATES}) RETURNING id",
                (to_text(until), owner, *job_ids),
            ) as cursor:
                return {int(row[0]) for row in await cursor.fetchall()}

        return await self._inline_write(renew)

    async def claimable_jobs(self, now: datetime, *, limit: int = 100) -> list[JobRecord]:
        """Runnable jobs nobody holds (lease run out or never taken), oldest first."""

        async def read(db: Db) -> list[JobRecord]:
            async with db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE {_CLAIMABLE} ORDER BY created_at, id "
                "LIMIT :limit",
                {"now": to_text(now), "limit": limit},
            ) as cursor:
                return [job_from_row(row) for row in await cursor.fetchall()]

        return await self._inline_read(read)

    async def release_lease(
        self, job_id: int, *, owner: str, retry_at: datetime | None = None
    ) -> bool:
        """Hand a job back: nobody holds it, and any process may claim it from ``retry_at``
        (at once when None)."""
        async with (
            self._write() as db,
            db.execute(
                "UPDATE jobs SET owner = NULL, lease_until = ? WHERE id = ? AND owner = ?",
                (None if retry_at is None else to_text(retry_at), job_id, owner),
            ) as cursor,
        ):
            return cursor.rowcount > 0

    async def record_crash(
        self, job_id: int, *, owner: str, retry_at: datetime, now: datetime
    ) -> int:
        """Count a run of the job that ended in an unforeseen error and hand it back until
        ``retry_at``; the job's attempts so far (0 when ``owner`` no longer holds it)."""
        async with (
            self._write() as db,
            db.execute(
                "UPDATE jobs SET attempts = attempts + 1, owner = NULL, lease_until = ?, "
                "updated_at = ? WHERE id = ? AND owner = ? RETURNING attempts",
                (to_text(retry_at), to_text(now), job_id, owner),
            ) as cursor,
        ):
            row = await cursor.fetchone()
        return 0 if row is None else int(row[0])

    async def mark_posting(self, job_id: int, *, owner: str, now: datetime) -> bool:
        """Record that posting the video starts now (so a restart looks for the post first)."""

        async def mark(db: Db) -> bool:
            async with db.execute(
                "UPDATE jobs SET posting_at = ?, updated_at = ? WHERE id = ? AND owner = ? "
                "AND state = 'delivering'",
                (to_text(now), to_text(now), job_id, owner),
            ) as cursor:
                return cursor.rowcount > 0

        return await self._inline_write(mark)

    async def mark_final_shown(self, job_id: int, *, now: datetime) -> None:
        """The settled job's status message now shows how it ended."""

        async def mark(db: Db) -> None:
            await db.execute(
                "UPDATE jobs SET final_shown_at = ? WHERE id = ? AND finished_at IS NOT NULL",
                (to_text(now), job_id),
            )

        await self._inline_write(mark)

    async def unshown_endings(self, since: datetime, *, limit: int = 50) -> list[JobRecord]:
        """Jobs settled since ``since`` whose status message was never seen showing the end."""

        async def read(db: Db) -> list[JobRecord]:
            async with db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE final_shown_at IS NULL "
                "AND finished_at IS NOT NULL AND finished_at >= ? "
                "AND status_message_id IS NOT NULL ORDER BY finished_at LIMIT ?",
                (to_text(since), limit),
            ) as cursor:
                return [job_from_row(row) for row in await cursor.fetchall()]

        return await self._inline_read(read)
