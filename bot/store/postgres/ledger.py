"""Credit arithmetic inside a store transaction: totals, open-job counts, the admit decision.

Budgets count the ledger rows *reserved during the period's time range* that are reserved or
committed, minus the rows a moderator's reset took off: rows of that reset's period with a
smaller mark (written before it, see ``usage_marks`` in V1__initial.sql).
Rows on the ``cap`` basis count against the member's cap and the pool; ``pending`` (waiting
for a moderator) and ``approved`` (let past the cap) rows count against the pool only.

Every function here runs inside the caller's transaction; a decision (``admission_verdict``)
must rest on figures read with the server's lock held
(:func:`~bot.store.postgres.guild_sql.lock_guild`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import asyncpg

from bot.errors import QuotaExceeded
from bot.models import JobRecord, JobState, NewJob, QuotaRefusal, Usage
from bot.quota import CreditTotals, Limits, PeriodWindow, quota_verdict
from bot.store.postgres.rows import JOB_COLUMNS, OPEN, Conn, job_from_row

__all__ = [
    "Basis",
    "active_counts",
    "admission_counts_sql",
    "admission_verdict",
    "counts_of",
    "credit_totals",
    "insert_job",
    "server_spend",
    "server_totals",
    "usage_record",
]

Basis = Literal["cap", "pending", "approved"]


def _in_window(start: str, end: str) -> str:
    """Ledger rows ``l`` of server $1 that count, reserved between ``start`` and ``end``
    (placeholders or column references)."""
    return (
        f"l.guild_id = $1 AND l.created_at >= {start} AND l.created_at < {end} "
        "AND l.state IN ('reserved', 'committed')"
    )


# A row stops counting once a reset of its period was made after it was written. A row
# written after the server's (or member's) latest reset of all, the usual case, needs no
# search for one: the first test, on one maximum taken once per statement, implies the
# second, so the two together say exactly what the second says alone.
_NOT_RESET = (
    "((l.mark > (SELECT MAX(r.mark) FROM usage_resets r WHERE r.guild_id = $1 AND {who})) "
    "IS NOT FALSE OR NOT EXISTS (SELECT 1 FROM usage_resets r WHERE r.guild_id = $1 AND {who} "
    "AND l.mark < r.mark AND l.created_at >= r.window_start))"
)


def _member_not_reset(member: str) -> str:
    return _NOT_RESET.format(who=f"(r.member_id = {member} OR r.member_id IS NULL)")


_SERVER_NOT_RESET = _NOT_RESET.format(who="r.member_id IS NULL")
# $1 guild, $2 window start, $3 window end (and $4 member where one is named).
_IN_WINDOW = _in_window("$2", "$3")
_MEMBER_NOT_RESET = _member_not_reset("$4")


async def server_totals(conn: Conn, guild_id: int, window: PeriodWindow) -> tuple[int, int]:
    """(committed, reserved) credits of the whole server in ``window``, any basis."""
    row = await conn.fetchrow(
        "SELECT COALESCE(SUM(credits) FILTER (WHERE state = 'committed'), 0), "
        "COALESCE(SUM(credits) FILTER (WHERE state = 'reserved'), 0) "
        f"FROM usage_ledger l WHERE {_IN_WINDOW} AND {_SERVER_NOT_RESET}",
        guild_id,
        window.start,
        window.end,
    )
    assert row is not None
    return int(row[0]), int(row[1])


async def server_spend(conn: Conn, guild_id: int, window: PeriodWindow) -> tuple[float, int]:
    """(USD, jobs priced) the provider charged for the server's jobs accepted in ``window``.

    Money is not forgiven by a reset of credits, nor given back when a made video could not be
    posted (its credits are released): every priced job counts.
    """
    row = await conn.fetchrow(
        "SELECT COALESCE(SUM(cost_usd), 0.0), COUNT(cost_usd) FROM usage_ledger "
        "WHERE guild_id = $1 AND created_at >= $2 AND created_at < $3",
        guild_id,
        window.start,
        window.end,
    )
    assert row is not None
    return round(float(row[0]), 6), int(row[1])


async def credit_totals(
    conn: Conn, guild_id: int, member_id: int, window: PeriodWindow
) -> CreditTotals:
    """The member's and the server's credits in ``window``."""
    member = await conn.fetchrow(
        "SELECT "
        "COALESCE(SUM(credits) FILTER (WHERE basis = 'cap' AND state = 'committed'), 0), "
        "COALESCE(SUM(credits) FILTER (WHERE basis = 'cap' AND state = 'reserved'), 0), "
        "COALESCE(SUM(credits) FILTER (WHERE basis = 'approved'), 0), "
        "COALESCE(SUM(credits) FILTER (WHERE basis = 'pending'), 0) "
        f"FROM usage_ledger l WHERE {_IN_WINDOW} AND l.member_id = $4 AND {_MEMBER_NOT_RESET}",
        guild_id,
        window.start,
        window.end,
        member_id,
    )
    assert member is not None
    server_used, server_reserved = await server_totals(conn, guild_id, window)
    return CreditTotals(
        member_used=int(member[0]),
        member_reserved=int(member[1]),
        member_approved=int(member[2]),
        member_pending=int(member[3]),
        server_used=server_used,
        server_reserved=server_reserved,
    )


def admission_counts_sql(start: str, end: str, member: str) -> str:
    """Everything a reservation decides on, in one query: the member's credits by basis (mu,
    mr, ma, mp), the server's (su, sr) and the open jobs of both (am, asv), of server $1 in the
    window from ``start`` to ``end`` for ``member`` (placeholders or column references)."""
    in_window = _in_window(start, end)
    return (
        "SELECT m.*, s.*, a.* FROM ("
        "SELECT "
        "COALESCE(SUM(credits) FILTER (WHERE basis = 'cap' AND state = 'committed'), 0) AS mu, "
        "COALESCE(SUM(credits) FILTER (WHERE basis = 'cap' AND state = 'reserved'), 0) AS mr, "
        "COALESCE(SUM(credits) FILTER (WHERE basis = 'approved'), 0) AS ma, "
        "COALESCE(SUM(credits) FILTER (WHERE basis = 'pending'), 0) AS mp "
        f"FROM usage_ledger l WHERE {in_window} AND l.member_id = {member} "
        f"AND {_member_not_reset(member)}"
        ") m, (SELECT "
        "COALESCE(SUM(credits) FILTER (WHERE state = 'committed'), 0) AS su, "
        "COALESCE(SUM(credits) FILTER (WHERE state = 'reserved'), 0) AS sr "
        f"FROM usage_ledger l WHERE {in_window} AND {_SERVER_NOT_RESET}"
        f") s, (SELECT COUNT(*) FILTER (WHERE member_id = {member}) AS am, "
        "COUNT(*) FILTER (WHERE state <> 'pending_approval') AS asv "
        f"FROM jobs WHERE guild_id = $1 AND {OPEN}) a"
    )


def counts_of(row: asyncpg.Record) -> tuple[CreditTotals, int, int]:
    """The credits and (member, server) open jobs of a row with the columns of
    :func:`admission_counts_sql`."""
    totals = CreditTotals(
        member_used=int(row["mu"]),
        member_reserved=int(row["mr"]),
        member_approved=int(row["ma"]),
        member_pending=int(row["mp"]),
        server_used=int(row["su"]),
        server_reserved=int(row["sr"]),
    )
    return totals, int(row["am"]), int(row["asv"])


def usage_record(
    totals: CreditTotals,
    limits: Limits,
    window: PeriodWindow,
    active_member: int,
    active_server: int,
) -> Usage:
    """What a member sees in /usage."""
    return Usage(
        period_key=window.key,
        resets_at=window.end,
        member_used=totals.member_used,
        member_reserved=totals.member_reserved,
        member_limit=limits.member_credits,
        server_used=totals.server_used,
        server_reserved=totals.server_reserved,
        server_limit=limits.server_credits,
        member_active_jobs=active_member,
        server_active_jobs=active_server,
        member_approved=totals.member_approved,
        member_pending=totals.member_pending,
    )


async def active_counts(conn: Conn, guild_id: int, member_id: int) -> tuple[int, int]:
    """(member, server) numbers of open jobs, whatever period they were charged to.

    A request waiting for a moderator counts for its member (so nobody can pile them up)
    but not for the server, so unanswered requests never hold up everybody else.
    """
    row = await conn.fetchrow(
        "SELECT COUNT(*) FILTER (WHERE member_id = $2), "
        "COUNT(*) FILTER (WHERE state <> 'pending_approval') FROM jobs "
        f"WHERE guild_id = $1 AND {OPEN}",
        guild_id,
        member_id,
    )
    assert row is not None
    return int(row[0]), int(row[1])


_INSERT = (
    "WITH job AS (INSERT INTO jobs (guild_id, channel_id, member_id, prompt, image_url, "
    "last_frame_url, resolution, duration, credits, state, period_key, created_at, "
    "updated_at, owner, lease_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
    f"$12, $12, $14, $15) RETURNING {JOB_COLUMNS}), "
    "ledger AS (INSERT INTO usage_ledger (job_id, guild_id, member_id, credits, state, basis, "
    "period_key, created_at) SELECT id, $1, $3, $9, 'reserved', $13, $11, $12 FROM job), "
    "approval AS (INSERT INTO approvals (job_id, guild_id, requested_at) "
    "SELECT id, $1, $12 FROM job WHERE state = 'pending_approval') "
    "SELECT * FROM job"
)


async def insert_job(
    conn: Conn,
    job: NewJob,
    *,
    cost: int,
    window: PeriodWindow,
    stamp: datetime,
    state: JobState,
    basis: Basis,
    lease: tuple[str, datetime] | None = None,
) -> JobRecord:
    """Write the job and its reservation, and a PENDING_APPROVAL job's place in the approval
    queue (one statement); with ``lease``, held by that owner until then."""
    owner, until = lease if lease is not None else (None, None)
    row = await conn.fetchrow(
        _INSERT,
        job.guild_id,
        job.channel_id,
        job.member_id,
        job.prompt,
        job.image_url,
        job.last_frame_url,
        job.resolution,
        job.duration,
        cost,
        state.value,
        window.key,
        stamp,
        basis,
        owner,
        until,
    )
    assert row is not None
    return job_from_row(row)


def admission_verdict(
    cost: int,
    limits: Limits,
    totals: CreditTotals,
    active_member: int,
    active_server: int,
    *,
    approvals: bool,
    window: PeriodWindow,
) -> tuple[JobState, Basis]:
    """The state a request is written in and the basis its credits count on, by
    :func:`~bot.quota.quota_verdict`; else :class:`QuotaExceeded`.

    Decides on totals read under the server's lock, so the write that follows in the same
    transaction is one step with the check for every process.
    """
    if cost < 0:
        raise ValueError(f"a job cannot cost {cost} credits")
    verdict = quota_verdict(
        cost=cost,
        limits=limits,
        totals=totals,
        active_member=active_member,
        active_server=active_server,
        approvals=approvals,
    )
    if verdict == "accept":
        return JobState.ACCEPTED, "cap"
    if verdict == "pending":
        return JobState.PENDING_APPROVAL, "pending"
    raise QuotaExceeded(
        QuotaRefusal.of(
            verdict,
            cost=cost,
            limits=limits,
            totals=totals,
            active_member=active_member,
            active_server=active_server,
            window=window,
        )
    )
