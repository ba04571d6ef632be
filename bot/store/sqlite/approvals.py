"""Accepting requests with each server's own settings, and the moderators' approval queue.

A request over the member's cap, while the server pool can still hold it and the server has
approvals on, is written PENDING_APPROVAL and its credits are *held in the pool* (so an
approval can always run, and nobody else can spend them meanwhile). It counts as one of the
member's open jobs, not the server's. Approve: the job becomes ACCEPTED and its credits
count against the pool only, never the member's cap. Deny, withdraw or expire: the job ends
CANCELLED with the reason and the credits are released.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from bot.errors import GateClosed, JobNotFound, QuotaExceeded
from bot.models import (
    Approval,
    ApprovalDecision,
    ApprovalRequest,
    GuildDefaults,
    GuildSettings,
    JobRecord,
    JobState,
    NewJob,
    QuotaRefusal,
    RefusalReason,
)
from bot.quota import PeriodWindow
from bot.store.sqlite.guild_sql import StoreCore, audit, check_gates_in, granted_in, load_settings
from bot.store.sqlite.inline import Db
from bot.store.sqlite.ledger import active_counts, admit, next_mark, server_totals
from bot.store.sqlite.rows import JOB_COLUMNS, from_opt_text, from_text, job_from_row, to_text

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
        requested_at=from_text(row["requested_at"]),
        message_id=None if row["message_id"] is None else int(row["message_id"]),
        decision=row["decision"],
        decided_by=None if row["decided_by"] is None else int(row["decided_by"]),
        reason=row["reason"],
        decided_at=from_opt_text(row["decided_at"]),
    )


async def _readmit(
    db: aiosqlite.Connection, job: JobRecord, settings: GuildSettings, now: datetime
) -> None:
    """The approval-time checks: the server's job cap, and the current period's pool.

    A waiting request counts for its member but not for the server, so the server's cap is
    checked only now. Its credits were held in the pool of the period it was asked in; in a
    later period they move to the current one (the period the video is made and paid in),
    with a fresh mark: no reset made before the move forgives them.
    """
    window = settings.window(now)
    limits = settings.limits(())
    _, active_server = await active_counts(db, job.guild_id, job.member_id)
    moved = job.period_key != window.key
    used, reserved = await server_totals(db, job.guild_id, window)
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
        stamp = to_text(now)
        await db.execute(
            "UPDATE usage_ledger SET created_at = ?, period_key = ?, mark = ? "
            "WHERE job_id = ? AND state = 'reserved'",
            (stamp, window.key, await next_mark(db), job.id),
        )
        await db.execute("UPDATE jobs SET period_key = ? WHERE id = ?", (window.key, job.id))


class ApprovalMixin(StoreCore):
    """Per-server reservations and the approval queue; mixed into :class:`~bot.store.Store`."""

    async def reserve_request(
        self,
        job: NewJob,
        *,
        cost: int,
        role_ids: Collection[int],
        defaults: GuildDefaults,
        now: datetime,
        parent_channel_id: int | None = None,
        owner: str | None = None,
        lease_until: datetime | None = None,
    ) -> JobRecord:
        """Accept a request under its server's settings, atomically; the stored job.

        With ``owner``, the job is born leased to that process until ``lease_until``, so no
        other process (or sweep) takes it before its owner has shown and started it.

        In one write transaction, run in one call: the gates (paused, banned, channel — see
        :meth:`check_gates`, which also checks the blocklist and should run first), the
        server's period, the member's cap (default or most generous role, plus this period's
        grants), the pool and the concurrency caps, then the write. The job comes back
        ACCEPTED, or PENDING_APPROVAL when it went to the moderators. Raises
        :class:`GateClosed` or :class:`QuotaExceeded`, having written nothing.
        """
        stamp = to_text(now)

        async def reserve(db: Db) -> tuple[JobRecord, PeriodWindow]:
            settings = await load_settings(db, job.guild_id, defaults)
            await check_gates_in(db, settings, job.member_id, job.channel_id, parent_channel_id)
            window = settings.window(now)
            granted = await granted_in(db, job.guild_id, job.member_id, window)
            limits = settings.limits(role_ids, granted)
            record = await admit(
                db,
                job,
                cost=cost,
                limits=limits,
                window=window,
                stamp=stamp,
                approvals=settings.approvals,
            )
            if owner is not None and lease_until is not None and record.state is JobState.ACCEPTED:
                await db.execute(
                    "UPDATE jobs SET owner = ?, lease_until = ? WHERE id = ?",
                    (owner, to_text(lease_until), record.id),
                )
                record = await self._require_job(db, record.id)
            if record.state is JobState.PENDING_APPROVAL:
                await db.execute(
                    "INSERT INTO approvals (job_id, guild_id, requested_at) VALUES (?, ?, ?)",
                    (record.id, job.guild_id, stamp),
                )
            return record, window

        # The whole transaction in one call on the store's inline thread (see ``inline``).
        record, window = await self._inline_write(reserve)
        log.info(
            "job %d %s: guild %d member %d, %s %ds, %d credits held in %s",
            record.id,
            "sent to the moderators" if record.state is JobState.PENDING_APPROVAL else "accepted",
            job.guild_id,
            job.member_id,
            job.resolution,
            job.duration,
            cost,
            window.key,
        )
        return record

    # -- reading the queue ----------------------------------------------------------------

    async def _approval(self, db: aiosqlite.Connection, job_id: int) -> Approval | None:
        async with db.execute(
            f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE job_id = ?", (job_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _approval_from_row(row)

    async def get_approval(self, job_id: int) -> ApprovalRequest | None:
        """The request for ``job_id`` if it ever went to the moderators, else None."""
        async with self._read() as db:
            approval = await self._approval(db, job_id)
            if approval is None:
                return None
            return ApprovalRequest(await self._require_job(db, job_id), approval)

    async def pending_approvals(self, guild_id: int | None = None) -> list[ApprovalRequest]:
        """Requests waiting for a moderator (in one server, or all), oldest first.

        After a restart, this is what the mod-log buttons must be registered for again.
        """
        where = "a.decision IS NULL" + ("" if guild_id is None else " AND a.guild_id = ?")
        params: tuple[int, ...] = () if guild_id is None else (guild_id,)
        job_columns = ", ".join(f"j.{c.strip()}" for c in JOB_COLUMNS.split(","))
        approval_columns = ", ".join(
            f"a.{c.strip()} AS a_{c.strip()}" for c in _APPROVAL_COLUMNS.split(",")
        )
        async with (
            self._read() as db,
            db.execute(
                f"SELECT {job_columns}, {approval_columns} FROM approvals a "
                f"JOIN jobs j ON j.id = a.job_id WHERE {where} ORDER BY a.requested_at, a.job_id",
                params,
            ) as cursor,
        ):
            rows = await cursor.fetchall()
        requests = []
        for row in rows:
            fields = {c.strip(): row[f"a_{c.strip()}"] for c in _APPROVAL_COLUMNS.split(",")}
            requests.append(ApprovalRequest(job_from_row(row), _approval_from_row(fields)))
        return requests

    async def set_approval_message(self, job_id: int, message_id: int | None) -> None:
        """Remember the mod-log message that carries the request's buttons."""
        async with self._write() as db:
            async with db.execute(
                "UPDATE approvals SET message_id = ? WHERE job_id = ?", (message_id, job_id)
            ) as cursor:
                found = cursor.rowcount > 0
            if not found:
                raise JobNotFound(job_id)

    # -- deciding -------------------------------------------------------------------------

    async def _load_request(
        self, db: aiosqlite.Connection, guild_id: int | None, job_id: int
    ) -> tuple[JobRecord, Approval]:
        job = await self._require_job(db, job_id)
        approval = await self._approval(db, job_id)
        # A button from another server must not reach this one's requests.
        if approval is None or (guild_id is not None and job.guild_id != guild_id):
            raise JobNotFound(job_id)
        return job, approval

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
        when = now or datetime.now(UTC)
        stamp = to_text(when)
        async with self._write() as db:
            job, approval = await self._load_request(db, guild_id, job_id)
            if approval.decision is not None or job.state is not JobState.PENDING_APPROVAL:
                return ApprovalRequest(job, approval, changed=False)
            settings = await load_settings(db, guild_id, defaults or GuildDefaults())
            if settings.paused:
                raise GateClosed("paused")
            await _readmit(db, job, settings, when)
            await db.execute(
                "UPDATE jobs SET state = 'accepted', created_at = :now, updated_at = :now, "
                "owner = NULL, lease_until = NULL WHERE id = :id AND state = 'pending_approval'",
                {"now": stamp, "id": job_id},
            )
            await db.execute(
                "UPDATE usage_ledger SET basis = 'approved' WHERE job_id = ? AND basis = 'pending'",
                (job_id,),
            )
            await db.execute(
                "UPDATE approvals SET decision = 'approved', decided_by = ?, decided_at = ? "
                "WHERE job_id = ?",
                (by, stamp, job_id),
            )
            await audit(
                db, guild_id, by, "approve", f"job {job_id}", stamp, target_id=job.member_id
            )
            job, approval = await self._load_request(db, guild_id, job_id)
        log.info("job %d approved by %d", job_id, by)
        return ApprovalRequest(job, approval, changed=True)

    async def _end_request(
        self,
        db: aiosqlite.Connection,
        job: JobRecord,
        decision: ApprovalDecision,
        *,
        by: int | None,
        reason: str | None,
        stamp: str,
    ) -> None:
        error = _ENDINGS[decision] + (f": {reason}" if reason else ".")
        await db.execute(
            "UPDATE jobs SET state = 'cancelled', error = :error, finished_at = :now, "
            "updated_at = :now WHERE id = :id AND state = 'pending_approval'",
            {"error": error, "now": stamp, "id": job.id},
        )
        await db.execute(
            "UPDATE usage_ledger SET state = 'released', settled_at = ? "
            "WHERE job_id = ? AND state = 'reserved'",
            (stamp, job.id),
        )
        await db.execute(
            "UPDATE approvals SET decision = ?, decided_by = ?, reason = ?, decided_at = ? "
            "WHERE job_id = ?",
            (decision, by, reason, stamp, job.id),
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
        stamp = to_text(now or datetime.now(UTC))
        async with self._write() as db:
            job, approval = await self._load_request(db, guild_id, job_id)
            if requester is not None and job.member_id != requester:
                raise JobNotFound(job_id)
            if approval.decision is not None or job.state is not JobState.PENDING_APPROVAL:
                return ApprovalRequest(job, approval, changed=False)
            await self._end_request(db, job, decision, by=by, reason=reason, stamp=stamp)
            if decision == "denied" and by is not None:
                detail = f"job {job_id}" + (f": {reason}" if reason else "")
                await audit(db, job.guild_id, by, "deny", detail, stamp, target_id=job.member_id)
            job, approval = await self._load_request(db, guild_id, job_id)
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
        stamp = to_text(now or datetime.now(UTC))
        ended: list[ApprovalRequest] = []
        async with self._write() as db:
            async with db.execute(
                "SELECT job_id FROM approvals WHERE decision IS NULL AND requested_at < ? "
                "ORDER BY requested_at, job_id",
                (to_text(older_than),),
            ) as cursor:
                job_ids = [int(r[0]) for r in await cursor.fetchall()]
            for job_id in job_ids:
                job, _ = await self._load_request(db, None, job_id)
                await self._end_request(db, job, "expired", by=None, reason=None, stamp=stamp)
                job, approval = await self._load_request(db, None, job_id)
                ended.append(ApprovalRequest(job, approval, changed=True))
        if ended:
            log.info("%d approval request(s) expired unanswered", len(ended))
        return ended
