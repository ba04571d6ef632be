"""Accepting a request: the reservation every ``/animate`` makes, in four round trips.

The transaction (:meth:`~bot.store.postgres.store.PostgresStore._locked`) opens holding the
server's lock; one statement then reads everything the decision rests on, the server's
settings, the member's ban and grants, the credits and the open jobs (the admission view's
statement, :func:`~bot.store.postgres.admission.server_view_sql`); Python decides with the
same rules as the SQLite store (:func:`~bot.moderation.gates.closed_gate`,
:func:`~bot.quota.quota_verdict`); one statement writes the job, its reservation and, when it
goes to the moderators, its approval; then COMMIT. A refusal rolls back, having written nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime

from bot.errors import GateClosed
from bot.models import GuildDefaults, JobRecord, JobState, NewJob
from bot.moderation.gates import closed_gate
from bot.store.postgres.admission import server_view_args, server_view_sql
from bot.store.postgres.guild_sql import StoreCore, settings_of
from bot.store.postgres.ledger import admission_verdict, counts_of, insert_job
from bot.store.postgres.rows import opt_utc, utc

__all__ = ["ReservationMixin"]

log = logging.getLogger(__name__)

_SERVER_VIEW = server_view_sql()


class ReservationMixin(StoreCore):
    """Per-server reservations; mixed into the PostgreSQL store."""

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

        In one transaction holding the server's lock: the gates (paused, banned, channel),
        the server's period, the member's cap (default or most generous role, plus this
        period's grants), the pool and the concurrency caps, then the write. The job comes
        back ACCEPTED, or PENDING_APPROVAL when it went to the moderators. Raises
        :class:`GateClosed` or :class:`QuotaExceeded`, having written nothing.
        """
        stamp = utc(now)
        until = opt_utc(lease_until)
        lease = None if owner is None or until is None else (owner, until)
        async with self._locked(job.guild_id) as conn:
            row = await conn.fetchrow(
                _SERVER_VIEW, *server_view_args(job.guild_id, job.member_id, defaults, stamp)
            )
            assert row is not None
            settings = settings_of(row, job.guild_id, defaults)
            closed = closed_gate(
                settings,
                banned=bool(row["banned"]),
                channel_id=job.channel_id,
                parent_id=parent_channel_id,
            )
            if closed is not None:
                raise GateClosed(closed, settings.allowed_channels)
            # The same window the statement picked: the server's period containing ``stamp``.
            window = settings.window(stamp)
            limits = settings.limits(role_ids, int(row["granted"]))
            totals, active_member, active_server = counts_of(row)
            state, basis = admission_verdict(
                cost,
                limits,
                totals,
                active_member,
                active_server,
                approvals=settings.approvals,
                window=window,
            )
            record = await insert_job(
                conn,
                job,
                cost=cost,
                window=window,
                stamp=stamp,
                state=state,
                basis=basis,
                lease=lease if state is JobState.ACCEPTED else None,
            )
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
