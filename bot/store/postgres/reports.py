"""Read-only summaries: usage per server and member for operators, a server's pool right now.

Nothing here changes the database; every query runs in one read-only snapshot.
"""

from __future__ import annotations

from datetime import datetime

from bot.models import GuildDefaults, JobRecord, PoolUsage, ReportRow
from bot.store.postgres.guild_sql import StoreCore, load_settings
from bot.store.postgres.ledger import server_spend, server_totals
from bot.store.postgres.rows import JOB_COLUMNS, OPEN, job_from_row, opt_utc, utc

__all__ = ["ReportMixin"]

# $1 the server (or NULL for all), $2 the start (or NULL for all time).
_JOB_COUNTS = (
    "SELECT guild_id, member_id, "
    "COUNT(*) FILTER (WHERE state = 'delivered') AS delivered, "
    "COUNT(*) FILTER (WHERE state = 'failed') AS failed, "
    "COUNT(*) FILTER (WHERE state = 'timed_out') AS timed_out, "
    "COUNT(*) FILTER (WHERE state = 'cancelled') AS cancelled, "
    f"COUNT(*) FILTER (WHERE {OPEN}) AS in_progress "
    "FROM jobs WHERE ($1::bigint IS NULL OR guild_id = $1) "
    "AND ($2::timestamptz IS NULL OR created_at >= $2) GROUP BY guild_id, member_id"
)

_CREDIT_SUMS = (
    "SELECT guild_id, member_id, "
    "COALESCE(SUM(credits) FILTER (WHERE state = 'committed'), 0) AS charged, "
    "COALESCE(SUM(credits) FILTER (WHERE state = 'released'), 0) AS released, "
    "COALESCE(SUM(credits) FILTER (WHERE state = 'reserved'), 0) AS held, "
    "COALESCE(SUM(cost_usd), 0.0) AS cost_usd "
    "FROM usage_ledger WHERE ($1::bigint IS NULL OR guild_id = $1) "
    "AND ($2::timestamptz IS NULL OR created_at >= $2) GROUP BY guild_id, member_id"
)


class ReportMixin(StoreCore):
    """Usage summaries and job listings; mixed into the PostgreSQL store."""

    async def open_jobs_in(self, guild_id: int, channel_id: int) -> list[JobRecord]:
        """The jobs of a channel (or thread) not settled yet, oldest first."""
        async with self._read() as conn:
            rows = await conn.fetch(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE guild_id = $1 AND channel_id = $2 "
                f"AND {OPEN} ORDER BY id",
                guild_id,
                channel_id,
            )
        return [job_from_row(row) for row in rows]

    async def usage_rows(
        self, *, guild_id: int | None = None, since: datetime | None = None
    ) -> list[ReportRow]:
        """Jobs and credits per server and member, sorted by server then member.

        ``guild_id`` keeps one server; ``since`` keeps jobs and charges made at or after it
        (a job's credits belong to the moment it was accepted).
        """
        start = opt_utc(since)
        async with self._read() as conn:
            job_rows = await conn.fetch(_JOB_COUNTS, guild_id, start)
            credit_rows = await conn.fetch(_CREDIT_SUMS, guild_id, start)
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
        when = utc(now)
        async with self._read() as conn:
            settings = await load_settings(conn, guild_id, defaults)
            window = settings.window(when)
            used, held = await server_totals(conn, guild_id, window)
            spent, priced = await server_spend(conn, guild_id, window)
            row = await conn.fetchrow(
                "SELECT COUNT(*) FILTER (WHERE state <> 'pending_approval'), "
                "COUNT(*) FILTER (WHERE state = 'pending_approval') FROM jobs "
                f"WHERE guild_id = $1 AND {OPEN}",
                guild_id,
            )
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
