"""Credit arithmetic inside a store transaction: totals, open-job counts, the admit decision.

Budgets count the ledger rows *reserved during the period's time range* that are reserved or
committed, minus the rows a moderator's reset took off: rows of that reset's period with a
smaller mark (written before it; see V6__usage_marks.sql). The sums are kept running, per
member and per server and UTC day, by the ledger's triggers (V7__usage_totals.sql), so a
check reads at most a period's days, however many jobs it held.
Rows on the ``cap`` basis count against the member's cap and the pool; ``pending`` (waiting
for a moderator) and ``approved`` (let past the cap) rows count against the pool only.
"""

from __future__ import annotations

from datetime import UTC
from typing import Literal

from bot.errors import QuotaExceeded
from bot.models import JobRecord, JobState, NewJob, QuotaRefusal, Usage
from bot.quota import CreditTotals, Limits, PeriodWindow, quota_verdict
from bot.store.sqlite.inline import Db
from bot.store.sqlite.rows import JOB_COLUMNS, OPEN, job_from_row, to_text

__all__ = [
    "active_counts",
    "admit",
    "credit_totals",
    "insert_job",
    "next_mark",
    "server_totals",
    "usage_record",
]

Basis = Literal["cap", "pending", "approved"]


def _range(guild_id: int, member_id: int | None, window: PeriodWindow) -> dict[str, object]:
    return {
        "guild": guild_id,
        "member": member_id,
        "start": to_text(window.start),
        "end": to_text(window.end),
    }


def _days(guild_id: int, member_id: int | None, window: PeriodWindow) -> dict[str, object]:
    """The running totals' keys for ``window``: its UTC days, first to last."""
    return {
        "guild": guild_id,
        "member": member_id,
        "first": window.start.astimezone(UTC).date().isoformat(),
        "after": window.end.astimezone(UTC).date().isoformat(),
    }


async def server_totals(db: Db, guild_id: int, window: PeriodWindow) -> tuple[int, int]:
    """(committed, reserved) credits of the whole server in ``window``, any basis.

    Read from the running totals (``usage_server_days``, kept by the ledger's triggers).
    """
    async with db.execute(
        "SELECT COALESCE(SUM(CASE WHEN state = 'committed' THEN credits END), 0), "
        "COALESCE(SUM(CASE WHEN state = 'reserved' THEN credits END), 0) "
        "FROM usage_server_days WHERE guild_id = :guild AND day >= :first AND day < :after",
        _days(guild_id, None, window),
    ) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def server_spend(db: Db, guild_id: int, window: PeriodWindow) -> tuple[float, int]:
    """(USD, jobs priced) the provider charged for the server's jobs accepted in ``window``.

    Money is not forgiven by a reset of credits, nor given back when a made video could not be
    posted (its credits are released): every priced job counts.
    """
    async with db.execute(
        "SELECT COALESCE(SUM(cost_usd), 0.0), COUNT(cost_usd) FROM usage_ledger "
        "WHERE guild_id = :guild AND created_at >= :start AND created_at < :end",
        _range(guild_id, None, window),
    ) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return round(float(row[0]), 6), int(row[1])


async def credit_totals(
    db: Db, guild_id: int, member_id: int, window: PeriodWindow
) -> CreditTotals:
    """The member's and the server's credits in ``window``, from the running totals
    (``usage_member_days``, kept by the ledger's triggers; see migration V7)."""
    async with db.execute(
        "SELECT "
        "COALESCE(SUM(CASE WHEN basis = 'cap' AND state = 'committed' THEN credits END), 0), "
        "COALESCE(SUM(CASE WHEN basis = 'cap' AND state = 'reserved' THEN credits END), 0), "
        "COALESCE(SUM(CASE WHEN basis = 'approved' THEN credits END), 0), "
        "COALESCE(SUM(CASE WHEN basis = 'pending' THEN credits END), 0) "
        "FROM usage_member_days WHERE guild_id = :guild AND member_id = :member "
        "AND day >= :first AND day < :after",
        _days(guild_id, member_id, window),
    ) as cursor:
        member = await cursor.fetchone()
    assert member is not None
    server_used, server_reserved = await server_totals(db, guild_id, window)
    return CreditTotals(
        member_used=int(member[0]),
        member_reserved=int(member[1]),
        member_approved=int(member[2]),
        member_pending=int(member[3]),
        server_used=server_used,
        server_reserved=server_reserved,
    )


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


async def active_counts(db: Db, guild_id: int, member_id: int) -> tuple[int, int]:
    """(member, server) numbers of open jobs, whatever period they were charged to.

    A request waiting for a moderator counts for its member (so nobody can pile them up)
    but not for the server, so unanswered requests never hold up everybody else.
    """
    async with db.execute(
        "SELECT COUNT(*) FILTER (WHERE member_id = ?), "
        "COUNT(*) FILTER (WHERE state <> 'pending_approval') FROM jobs "
        f"WHERE guild_id = ? AND {OPEN}",
        (member_id, guild_id),
    ) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def next_mark(db: Db) -> int:
    """The next mark in the order of charges and resets (inside the caller's write
    transaction, so the order of marks is the order of writes)."""
    async with db.execute("UPDATE usage_marks SET last = last + 1 RETURNING last") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def insert_job(
    db: Db,
    job: NewJob,
    *,
    cost: int,
    window: PeriodWindow,
    stamp: str,
    state: JobState,
    basis: Basis,
) -> JobRecord:
    """Write the job and its reservation."""
    async with db.execute(
        "INSERT INTO jobs (guild_id, channel_id, member_id, prompt, image_url, "
        "last_frame_url, resolution, duration, credits, state, period_key, created_at, "
        "updated_at) VALUES (:guild_id, :channel_id, :member_id, :prompt, :image_url, "
        ":last_frame_url, :resolution, :duration, :credits, :state, :period_key, "
        f":now, :now) RETURNING {JOB_COLUMNS}",
        {
            "guild_id": job.guild_id,
            "channel_id": job.channel_id,
            "member_id": job.member_id,
            "prompt": job.prompt,
            "image_url": job.image_url,
            "last_frame_url": job.last_frame_url,
            "resolution": job.resolution,
            "duration": job.duration,
            "credits": cost,
            "state": state.value,
            "period_key": window.key,
            "now": stamp,
        },
    ) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    record = job_from_row(row)
    mark = await next_mark(db)
    await db.execute(
        "INSERT INTO usage_ledger (job_id, guild_id, member_id, credits, state, basis, "
        "period_key, created_at, mark) VALUES (?, ?, ?, ?, 'reserved', ?, ?, ?, ?)",
        (record.id, job.guild_id, job.member_id, cost, basis, window.key, stamp, mark),
    )
    return record


async def admit(
    db: Db,
    job: NewJob,
    *,
    cost: int,
    limits: Limits,
    window: PeriodWindow,
    stamp: str,
    approvals: bool,
) -> JobRecord:
    """Check the budgets and write the job ACCEPTED (or PENDING_APPROVAL); else QuotaExceeded.

    Must run inside the caller's write transaction, so the check and the write are atomic.
    """
    if cost < 0:
        raise ValueError(f"a job cannot cost {cost} credits")
    totals = await credit_totals(db, job.guild_id, job.member_id, window)
    active_member, active_server = await active_counts(db, job.guild_id, job.member_id)
    verdict = quota_verdict(
        cost=cost,
        limits=limits,
        totals=totals,
        active_member=active_member,
        active_server=active_server,
        approvals=approvals,
    )
    state: JobState
    basis: Basis
    if verdict == "accept":
        state, basis = JobState.ACCEPTED, "cap"
    elif verdict == "pending":
        state, basis = JobState.PENDING_APPROVAL, "pending"
    else:
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
    return await insert_job(
        db, job, cost=cost, window=window, stamp=stamp, state=state, basis=basis
    )
