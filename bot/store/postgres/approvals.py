"""The moderators' approval queue.

A request over the member's cap, while the server pool can still hold it and the server has
approvals on, is written PENDING_APPROVAL and its credits are *held in the pool* (so an
approval can always run, and nobody else can spend them meanwhile). It counts as one of the
member's open jobs, not the server's. Approve: the job becomes ACCEPTED and its credits
count against the pool only, never the member's cap. Deny, withdraw or expire: the job ends
CANCELLED with the reason and the credits are released.

Every decision holds the server's lock and the job's row lock, so a decision, a reservation
and a runner ending the job never interleave.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from bot.errors import GateClosed, JobNotFound, QuotaExceeded
from bot.models import (
    Approval,
    ApprovalDecision,
    ApprovalRequest,
    GuildDefaults,
    GuildSettings,
    JobRecord,
    JobState,
    QuotaRefusal,
    RefusalReason,
)
from bot.store.postgres.guild_sql import (
    StoreCore,
    audit,
    load_settings,
    lock_guild,
    lock_guilds,
)
from bot.store.postgres.ledger import active_counts, server_totals
from bot.store.postgres.rows import (
    JOB_COLUMNS,
    Conn,
    job_from_row,
    now_or,
    opt_time_of,
    time_of,
    utc,
)

__all__ = ["ApprovalMixin"]

log = logging.getLogger(__name__)

_APPROVAL_COLUMNS = (
    "job_id, guild_id, requested_at, message_id, decision, decided_by, reason, decided_at"
)

_ENDINGS: dict[ApprovalDecision, str] = {
    "denied": "A moderator denied this request",
    "withdrawn": "You withdrew this request",
    "expired": "No moderator answered this request in time",
}


def _approval_from_row(row: Any) -> Approval:
    return Approval(
        job_id=int(row["job_id"]),
        guild_id=int(row["guild_id"]),
        requested_at=time_of(row["requested_at"]),
        message_id=None if row["message_id"] is None else int(row["message_id"]),
        decision=row["decision"],
        decided_by=None if row["decided_by"] is None else int(row["decided_by"]),
        reason=row["reason"],
        decided_at=opt_time_of(row["decided_at"]),
    )


async def _readmit(conn: Conn, job: JobRecord, settings: GuildSettings, now: datetime) -> None:
    """The approval-time checks: the server's job cap, and the current period's pool.

    A waiting request counts for its member but not for the server, so the server's cap is
    checked only now. Its credits were held in the pool of the period it was asked in; in a
    later period they move to the current one (the period the video is made and paid in),
    with a fresh mark: no reset made before the move forgives them.
    """
    window = settings.window(now)
    limits = settings.limits(())
    _, active_server = await active_counts(conn, job.guild_id, job.member_id)
    moved = job.period_key != window.key
    used, reserved = await server_totals(conn, job.guild_id, window)
    reason: RefusalReason | None = None
    if active_server >= limits.server_concurrent:
        reason = "server_concurrent"
    elif moved and used + reserved + job.credits > limits.server_credits:
        reason = "server_credits"
    if reason is not None:
        raise QuotaExceeded(
            QuotaRefusal(
                reason=reason,
                cost=job.credits,
                member_used=0,
                member_limit=limits.member_credits,
                server_used=used + reserved,
                server_limit=limits.server_credits,
                active_member=0,
                active_server=active_server,
                resets_at=window.end,
                period=window.period,
            )
        )
    if moved:
        await conn.execute(
            "UPDATE usage_ledger SET created_at = $2, period_key = $3, "
            "mark = nextval('usage_marks') WHERE job_id = $1 AND state = 'reserved'",
            job.id,
            now,
            window.key,
        )
        await conn.execute("UPDATE jobs SET period_key = $2 WHERE id = $1", job.id, window.key)


class ApprovalMixin(StoreCore):
    """The approval queue; mixed into the PostgreSQL store."""

    # -- reading the queue ----------------------------------------------------------------

    async def _approval(self, conn: Conn, job_id: int) -> Approval | None:
        row = await conn.fetchrow(
            f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE job_id = $1", job_id
        )
        return None if row is None else _approval_from_row(row)

    async def get_approval(self, job_id: int) -> ApprovalRequest | None:
        """The request for ``job_id`` if it ever went to the moderators, else None."""
        async with self._read() as conn:
            approval = await self._approval(conn, job_id)
            if approval is None:
                return None
            return ApprovalRequest(await self._require_job(conn, job_id), approval)

    async def pending_approvals(self, guild_id: int | None = None) -> list[ApprovalRequest]:
        """Requests waiting for a moderator (in one server, or all), oldest first.

        After a restart, this is what the mod-log buttons must be registered for again.
        """
        job_columns = ", ".join(f"j.{c.strip()}" for c in JOB_COLUMNS.split(","))
        approval_columns = ", ".join(
            f"a.{c.strip()} AS a_{c.strip()}" for c in _APPROVAL_COLUMNS.split(",")
        )
        async with self._read() as conn:
            rows = await conn.fetch(
                f"SELECT {job_columns}, {approval_columns} FROM approvals a "
                "JOIN jobs j ON j.id = a.job_id WHERE a.decision IS NULL "
                "AND ($1::bigint IS NULL OR a.guild_id = $1) ORDER BY a.requested_at, a.job_id",
                guild_id,
            )
        requests = []
        for row in rows:
            fields = {c.strip(): row[f"a_{c.strip()}"] for c in _APPROVAL_COLUMNS.split(",")}
            requests.append(ApprovalRequest(job_from_row(row), _approval_from_row(fields)))
        return requests

    async def set_approval_message(self, job_id: int, message_id: int | None) -> None:
        """Remember the mod-log message that carries the request's buttons."""
        async with self._write() as conn:
            found = await conn.fetchval(
                "UPDATE approvals SET message_id = $2 WHERE job_id = $1 RETURNING job_id",
                job_id,
                message_id,
            )
        if found is None:
            raise JobNotFound(job_id)

    # -- deciding -------------------------------------------------------------------------

    async def _load_request(
        self, conn: Conn, guild_id: int | None, job_id: int
    ) -> tuple[JobRecord, Approval]:
        """The job (row-locked until the transaction ends) and its approval."""
        row = await conn.fetchrow(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 FOR UPDATE", job_id
        )
        if row is None:
            raise JobNotFound(job_id)
        job = job_from_row(row)
        approval = await self._approval(conn, job_id)
        # A button from another server must not reach this one's requests.
        if approval is None or (guild_id is not None and job.guild_id != guild_id):
            raise JobNotFound(job_id)
        return job, approval

    async def _lock_job_guild(self, conn: Conn, job_id: int) -> None:
        """Take the lock of the server ``job_id`` belongs to (nothing when there is no job)."""
        guild_id = await conn.fetchval("SELECT guild_id FROM jobs WHERE id = $1", job_id)
        if guild_id is not None:
            await lock_guild(conn, int(guild_id))

    async def approve_request(
        self,
        guild_id: int,
        job_id: int,
        *,
        by: int,
        now: datetime | None = None,
        defaults: GuildDefaults | None = None,
    ) -> ApprovalRequest:
        """Let a waiting request run: ACCEPTED, its credits on the pool only.

        Admitted anew under the server's settings now: the server's job cap must have room,
        and a request made in an earlier period moves its credits to the current period's
        pool, which must hold them. Else :class:`QuotaExceeded`, and it keeps waiting.

        The job's clock (``created_at``, which the runner's deadline counts from) restarts
        now; the request time stays in the approval. ``changed`` is False, and nothing
        happens, when it was already decided. Raises :class:`GateClosed` while the server
        is paused, :class:`JobNotFound` for a job of another server or never sent to approval.
        """
        when = now_or(now)
        async with self._locked(guild_id) as conn:
            job, approval = await self._load_request(conn, guild_id, job_id)
            if approval.decision is not None or job.state is not JobState.PENDING_APPROVAL:
                return ApprovalRequest(job, approval, changed=False)
            settings = await load_settings(conn, guild_id, defaults or GuildDefaults())
            if settings.paused:
                raise GateClosed("paused")
            await _readmit(conn, job, settings, when)
            await conn.execute(
                "UPDATE jobs SET state = 'accepted', created_at = $2, updated_at = $2, "
                "owner = NULL, lease_until = NULL WHERE id = $1 AND state = 'pending_approval'",
                job_id,
                when,
            )
            await conn.execute(
                "UPDATE usage_ledger SET basis = 'approved' "
                "WHERE job_id = $1 AND basis = 'pending'",
                job_id,
            )
            await conn.execute(
                "UPDATE approvals SET decision = 'approved', decided_by = $2, decided_at = $3 "
                "WHERE job_id = $1",
                job_id,
                by,
                when,
            )
            await audit(
                conn, guild_id, by, "approve", f"job {job_id}", when, target_id=job.member_id
            )
            job, approval = await self._load_request(conn, guild_id, job_id)
        log.info("job %d approved by %d", job_id, by)
        return ApprovalRequest(job, approval, changed=True)

    async def _end_request(
        self,
        conn: Conn,
        job: JobRecord,
        decision: ApprovalDecision,
        *,
        by: int | None,
        reason: str | None,
        stamp: datetime,
    ) -> None:
        error = _ENDINGS[decision] + (f": {reason}" if reason else ".")
        await conn.execute(
            "UPDATE jobs SET state = 'cancelled', error = $2, finished_at = $3, "
            "updated_at = $3 WHERE id = $1 AND state = 'pending_approval'",
            job.id,
            error,
            stamp,
        )
        await conn.execute(
            "UPDATE usage_ledger SET state = 'released', settled_at = $2 "
            "WHERE job_id = $1 AND state = 'reserved'",
            job.id,
            stamp,
        )
        await conn.execute(
            "UPDATE approvals SET decision = $2, decided_by = $3, reason = $4, decided_at = $5 "
            "WHERE job_id = $1",
            job.id,
            decision,
            by,
            reason,
            stamp,
        )

    async def _decide_against(
        self,
        guild_id: int | None,
        job_id: int,
        decision: ApprovalDecision,
        *,
        by: int | None,
        reason: str | None,
        now: datetime | None,
        requester: int | None = None,
    ) -> ApprovalRequest:
        stamp = now_or(now)
        async with self._write() as conn:
            if guild_id is None:
                await self._lock_job_guild(conn, job_id)
            else:
                await lock_guild(conn, guild_id)
            job, approval = await self._load_request(conn, guild_id, job_id)
            if requester is not None and job.member_id != requester:
                raise JobNotFound(job_id)
            if approval.decision is not None or job.state is not JobState.PENDING_APPROVAL:
                return ApprovalRequest(job, approval, changed=False)
            await self._end_request(conn, job, decision, by=by, reason=reason, stamp=stamp)
            if decision == "denied" and by is not None:
                detail = f"job {job_id}" + (f": {reason}" if reason else "")
                await audit(conn, job.guild_id, by, "deny", detail, stamp, target_id=job.member_id)
            job, approval = await self._load_request(conn, guild_id, job_id)
        log.info("job %d %s (%s)", job_id, decision, reason or "no reason given")
        return ApprovalRequest(job, approval, changed=True)

    async def deny_request(
        self,
        guild_id: int,
        job_id: int,
        *,
        by: int,
        reason: str | None = None,
        now: datetime | None = None,
    ) -> ApprovalRequest:
        """Refuse a waiting request: CANCELLED with the reason, credits released.

        ``changed`` is False, and nothing happens, when it was already decided.
        """
        return await self._decide_against(guild_id, job_id, "denied", by=by, reason=reason, now=now)

    async def withdraw_request(
        self, job_id: int, *, member_id: int, now: datetime | None = None
    ) -> ApprovalRequest:
        """The requester takes back a request still waiting for a moderator.

        Raises :class:`JobNotFound` unless ``member_id`` made the request.
        """
        return await self._decide_against(
            None, job_id, "withdrawn", by=member_id, reason=None, now=now, requester=member_id
        )

    async def expire_approvals(
        self, *, older_than: datetime, now: datetime | None = None
    ) -> list[ApprovalRequest]:
        """End every request that has waited since before ``older_than``; the ones ended."""
        stamp = now_or(now)
        cutoff = utc(older_than)
        ended: list[ApprovalRequest] = []
        async with self._write() as conn:
            found = await conn.fetch(
                "SELECT job_id, guild_id FROM approvals WHERE decision IS NULL "
                "AND requested_at < $1 ORDER BY requested_at, job_id",
                cutoff,
            )
            await lock_guilds(conn, (int(r["guild_id"]) for r in found))
            for record in found:
                try:
                    job, approval = await self._load_request(conn, None, int(record["job_id"]))
                except JobNotFound:
                    continue  # its member was forgotten between the look and the locks
                # Decided (or ended by its runner) between the look and the locks: leave it.
                if approval.decision is not None or job.state is not JobState.PENDING_APPROVAL:
                    continue
                await self._end_request(conn, job, "expired", by=None, reason=None, stamp=stamp)
                job, approval = await self._load_request(conn, None, job.id)
                ended.append(ApprovalRequest(job, approval, changed=True))
        if ended:
            log.info("%d approval request(s) expired unanswered", len(ended))
        return ended
