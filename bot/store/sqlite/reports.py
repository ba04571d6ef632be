"""Read-only summaries: usage per server and member for operators, a server's pool right now.

Nothing here changes the database; every query runs in one read transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.models import GuildDefaults
from bot.store.sqlite.guild_sql import StoreCore, load_settings
from bot.store.sqlite.ledger import server_totals
from bot.store.sqlite.rows import OPEN, to_text

__all__ = ["PoolUsage", "ReportMixin", "ReportRow"]


@dataclass(frozen=True)
class ReportRow:
    """What one member (or, with ``member_id`` 0, the server's forgotten members) did.

    Job counts come from the jobs still stored; credits from the usage ledger, which keeps the
    charges of forgotten members (under member id 0) so the money stays accounted for.
    """

    guild_id: int
    member_id: int
    delivered: int = 0
    failed: int = 0
    timed_out: int = 0
    cancelled: int = 0
    in_progress: int = 0
    """Jobs not finished yet, requests waiting for a moderator included."""
    credits_charged: int = 0
    """Committed: videos delivered."""
    credits_released: int = 0
    """Reserved, then given back because the job did not deliver."""
    credits_held: int = 0
    """Reserved by jobs still in progress."""

    @property
    def jobs(self) -> int:
        """Every job counted in the row."""
        return self.delivered + self.failed + self.timed_out + self.cancelled + self.in_progress


@dataclass(frozen=True)
class PoolUsage:
    """A server's pool in its current period, resets applied, as the budgets count it."""

    period_key: str
    resets_at: datetime
    limit: int
    used: int
    """Committed by delivered jobs."""
    held: int
    """Reserved by open jobs and by requests waiting for a moderator."""
    active_jobs: int
    """Jobs in progress (requests waiting for a moderator not included)."""
    awaiting_approval: int
    """Requests waiting for a moderator."""

    @property
    def left(self) -> int:
        """Credits the server can still spend this period."""
        return max(0, self.limit - self.used - self.held)


_JOB_COUNTS = (
    "SELECT guild_id, member_id, "
    "COALESCE(SUM(state = 'delivered'), 0) AS delivered, "
    "COALESCE(SUM(state = 'failed'), 0) AS failed, "
    "COALESCE(SUM(state = 'timed_out'), 0) AS timed_out, "
    "COALESCE(SUM(state = 'cancelled'), 0) AS cancelled, "
    f"COALESCE(SUM({OPEN}), 0) AS in_progress "
    "FROM jobs WHERE (:guild IS NULL OR guild_id = :guild) "
    "AND (:since IS NULL OR created_at >= :since) GROUP BY guild_id, member_id"
)

_CREDIT_SUMS = (
    "SELECT guild_id, member_id, "
    "COALESCE(SUM(CASE WHEN state = 'committed' THEN credits END), 0) AS charged, "
    "COALESCE(SUM(CASE WHEN state = 'released' THEN credits END), 0) AS released, "
    "COALESCE(SUM(CASE WHEN state = 'reserved' THEN credits END), 0) AS held "
    "FROM usage_ledger WHERE (:guild IS NULL OR guild_id = :guild) "
    "AND (:since IS NULL OR created_at >= :since) GROUP BY guild_id, member_id"
)


class ReportMixin(StoreCore):
    """Usage summaries; mixed into :class:`~bot.store.Store`."""

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
        return [
            ReportRow(guild_id=guild, member_id=member, **values)
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
            async with db.execute(
                "SELECT COALESCE(SUM(state <> 'pending_approval'), 0), "
                f"COALESCE(SUM(state = 'pending_approval'), 0) FROM jobs "
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
        )
