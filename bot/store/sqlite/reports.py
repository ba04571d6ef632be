"""Read-only summaries: usage per server and member for operators, a server's pool right now,
a member's latest jobs, recent run times.

Nothing here changes the database; every query runs in one read transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime

from bot.models import GuildDefaults, JobRecord, PoolUsage, ReportRow
from bot.store.sqlite.guild_sql import StoreCore, load_settings
from bot.store.sqlite.inline import Db
from bot.store.sqlite.ledger import server_spend, server_totals
from bot.store.sqlite.rows import JOB_COLUMNS, OPEN, from_text, job_from_row, to_text

__all__ = ["ReportMixin"]


_JOB_COUNTS = (
    "SELECT guild_id, member_id, "
    "COUNT(*) FILTER (WHERE state = 'delivered') AS delivered, "
    "COUNT(*) FILTER (WHERE state = 'failed') AS failed, "
    "COUNT(*) FILTER (WHERE state = 'timed_out') AS timed_out, "
    "COUNT(*) FILTER (WHERE state = 'cancelled') AS cancelled, "
    f"COUNT(*) FILTER (WHERE {OPEN}) AS in_progress "
    "FROM jobs WHERE (:guild IS NULL OR guild_id = :guild) "
    "AND (:since IS NULL OR created_at >= :since) GROUP BY guild_id, member_id"
)

_CREDIT_SUMS = (
    "SELECT guild_id, member_id, "
    "COALESCE(SUM(CASE WHEN state = 'committed' THEN credits END), 0) AS charged, "
    "COALESCE(SUM(CASE WHEN state = 'released' THEN credits END), 0) AS released, "
    "COALESCE(SUM(CASE WHEN state = 'reserved' THEN credits END), 0) AS held, "
    "COALESCE(SUM(cost_usd), 0.0) AS cost_usd "
    "FROM usage_ledger WHERE (:guild IS NULL OR guild_id = :guild) "
    "AND (:since IS NULL OR created_at >= :since) GROUP BY guild_id, member_id"
)


class ReportMixin(StoreCore):
    """Usage summaries and job history; mixed into :class:`~bot.store.Store`."""

    async def usage_rows(
        self, *, guild_id: int | None = None, since: datetime | None = None
    ) -> list[ReportRow]:
        """Jobs and credits per server and member, sorted by server then member.

        ``guild_id`` keeps one server; ``since`` keeps jobs and charges made at or after it
        (a job's credits belong to the moment it was accepted).
        """
        params = {"guild": guild_id, "since": None if since is None else to_text(since)}
        async with self._read() as db:
            async with db.execute(_JOB_COUNTS, params) as cursor:
                job_rows = await cursor.fetchall()
            async with db.execute(_CREDIT_SUMS, params) as cursor:
                credit_rows = await cursor.fetchall()
        counts: dict[tuple[int, int], dict[str, int]] = {}
        spent: dict[tuple[int, int], float] = {}
        for r in job_rows:
            counts.setdefault((int(r["guild_id"]), int(r["member_id"])), {}).update(
                delivered=int(r["delivered"]),
                failed=int(r["failed"]),
                timed_out=int(r["timed_out"]),
                cancelled=int(r["cancelled"]),
                in_progress=int(r["in_progress"]),
            )
        for r in credit_rows:
            counts.setdefault((int(r["guild_id"]), int(r["member_id"])), {}).update(
                credits_charged=int(r["charged"]),
                credits_released=int(r["released"]),
                credits_held=int(r["held"]),
            )
            # Sums of floats: to the micro-dollar, so 0.35 + 0.175 reads 0.525.
            spent[(int(r["guild_id"]), int(r["member_id"]))] = round(float(r["cost_usd"]), 6)
        return [
            ReportRow(
                guild_id=guild, member_id=member, cost_usd=spent.get((guild, member), 0.0), **values
            )
            for (guild, member), values in sorted(counts.items())
        ]

    async def pool_usage(
        self, guild_id: int, *, defaults: GuildDefaults, now: datetime
    ) -> PoolUsage:
        """The server's pool in the period containing ``now``, with its open jobs."""
        async with self._read() as db:
            settings = await load_settings(db, guild_id, defaults)
            window = settings.window(now)
            used, held = await server_totals(db, guild_id, window)
            spent, priced = await server_spend(db, guild_id, window)
            async with db.execute(
                "SELECT COUNT(*) FILTER (WHERE state <> 'pending_approval'), "
                "COUNT(*) FILTER (WHERE state = 'pending_approval') FROM jobs "
                f"WHERE guild_id = ? AND {OPEN}",
                (guild_id,),
            ) as cursor:
                row = await cursor.fetchone()
        assert row is not None
        return PoolUsage(
            period_key=window.key,
            resets_at=window.end,
            limit=settings.server_credits,
            used=used,
            held=held,
            active_jobs=int(row[0]),
            awaiting_approval=int(row[1]),
            spent_usd=spent,
            priced_jobs=priced,
        )

    async def recent_jobs(
        self, guild_id: int, member_id: int, *, limit: int = 10
    ) -> list[JobRecord]:
        """A member's latest jobs in a server, newest first."""
        async with (
            self._read() as db,
            db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE guild_id = ? AND member_id = ? "
                "ORDER BY id DESC LIMIT ?",
                (guild_id, member_id, limit),
            ) as cursor,
        ):
            rows = await cursor.fetchall()
        return [job_from_row(row) for row in rows]

    async def open_jobs_in(self, guild_id: int, channel_id: int) -> list[JobRecord]:
        """The jobs of a channel (or thread) not settled yet, oldest first."""
        async with (
            self._read() as db,
            db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE guild_id = ? AND channel_id = ? "
                f"AND {OPEN} ORDER BY id",
                (guild_id, channel_id),
            ) as cursor,
        ):
            rows = await cursor.fetchall()
        return [job_from_row(row) for row in rows]

    async def recent_run_seconds(
        self, resolution: str, duration: int, *, limit: int = 20
    ) -> list[float]:
        """Seconds from the start of generation to delivery of recent delivered jobs of this kind.

        Queue time is left out: the poller and the ETA count from when a job is seen running.
        """

        async def read(db: Db) -> Iterable[sqlite3.Row]:
            async with db.execute(
                "SELECT started_at, finished_at FROM jobs WHERE state = 'delivered' "
                "AND resolution = ? AND duration = ? AND started_at IS NOT NULL "
                "ORDER BY finished_at DESC LIMIT ?",
                (resolution, duration, limit),
            ) as cursor:
                return await cursor.fetchall()

        rows = await self._inline_read(read)
        return [(from_text(row[1]) - from_text(row[0])).total_seconds() for row in rows]
