"""Admission: the one door a new request goes through before it becomes a job.

In order: the video service is up (circuit breaker), the server's gates are open (paused,
banned, channel), the prompt passes the blocklist, the credits and job caps allow it (all of
it from one read of the store), then the credits are reserved and the job written in one
transaction (which checks the gates and the budgets again, so a ban or pause that lands in
between still refuses). Nothing is charged for a refusal. Each of the two store calls is one
round trip to the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.errors import GateClosed, QuotaExceeded, UserFacingError
from bot.i18n import N_
from bot.jobs.breaker import CircuitBreaker, ProviderUnavailable
from bot.models import GuildDefaults, JobRecord, NewJob, QuotaRefusal
from bot.moderation.blocklist import BLOCKLIST_BUDGET, BlocklistTimeout, find_blocked_rule
from bot.moderation.gates import RequestRefused, closed_gate
from bot.ops import metrics
from bot.quota import CostTable, CreditTotals, Limits, job_cost, quota_verdict
from bot.runcomfy.errors import RunComfyError
from bot.store.protocol import AdmissionView, Store

log = logging.getLogger(__name__)

RESTARTING = N_(
    "The bot is restarting, so it is not taking new videos for a moment. Nothing was charged; "
    "please try again in a minute."
)


@dataclass(frozen=True)
class Request:
    """A member's request as the face sees it: the job, and who and where it comes from."""

    job: NewJob
    role_ids: Collection[int] = ()
    """The member's roles, for role-based credit caps."""
    parent_channel_id: int | None = None
    """For a thread: its parent channel, which the allowed-channels list is checked against."""


class Admission:
    """Screens and accepts new requests for every server of the process."""

    def __init__(
        self,
        *,
        store: Store,
        probe: Callable[[], Awaitable[object]],
        breaker: CircuitBreaker,
        defaults: GuildDefaults,
        costs: CostTable,
        clock: Callable[[], datetime],
        owner: str | None = None,
        lease: timedelta = timedelta(seconds=30),
        blocklist_budget: float = BLOCKLIST_BUDGET,
    ) -> None:
        self._store = store
        self._probe = probe
        self._breaker = breaker
        self._defaults = defaults
        self._costs = costs
        self._clock = clock
        self._blocklist_budget = blocklist_budget
        self._owner = owner
        self._lease = lease
        self._probe_lock = asyncio.Lock()
        self.closing = False
        """Set on a graceful stop: new requests get a plain "restarting" answer."""

    def cost(self, resolution: str, duration: int) -> int:
        """Credits a video with these settings costs."""
        return job_cost(self._costs, resolution, duration)

    async def screen(self, request: Request) -> AdmissionView:
        """Everything that can refuse a request before its images are fetched.

        One read of the store (:meth:`~bot.store.protocol.ApprovalRepository.admission_view`)
        gives the gates, the blocklist and the member's usage; it is returned for
        :meth:`precheck`. Raises :class:`ProviderUnavailable` while the video service fails,
        or :class:`RequestRefused` for a closed gate or a blocked prompt.
        """
        if self.closing:
            raise UserFacingError(RESTARTING)
        await self._provider_ready()
        view = await self._view(request)
        job = request.job
        closed = closed_gate(
            view.settings,
            banned=view.banned,
            channel_id=job.channel_id,
            parent_id=request.parent_channel_id,
        )
        if closed is not None:
            raise RequestRefused(closed, allowed_channels=view.settings.allowed_channels)
        rules = view.rules
        if not rules:
            return view
        try:
            rule = await find_blocked_rule(job.prompt, rules, budget=self._blocklist_budget)
        except BlocklistTimeout:
            log.warning(
                "guild %d: blocklist of %d rules ran out of time on a prompt of %d chars",
                job.guild_id,
                len(rules),
                len(job.prompt),
            )
            raise RequestRefused("unchecked") from None
        if rule is not None:
            raise RequestRefused("blocked", rule=rule)
        return view

    async def precheck(self, request: Request, view: AdmissionView | None = None) -> None:
        """The credits and job caps as stored now: a read, no reservation.

        Run before any image is fetched, so a member with no credits or a full job cap costs
        the bot no download. ``view`` is what :meth:`screen` read (read anew when not given).
        Raises :class:`~bot.errors.QuotaExceeded` for what :meth:`accept` would refuse anyway;
        :meth:`accept` still decides, atomically.
        """
        job = request.job
        cost = self.cost(job.resolution, job.duration)
        now = self._clock()
        if view is None:
            view = await self._view(request)
        usage = view.usage
        settings = view.settings
        totals = CreditTotals(
            member_used=usage.member_used,
            member_reserved=usage.member_reserved,
            member_approved=usage.member_approved,
            member_pending=usage.member_pending,
            server_used=usage.server_used,
            server_reserved=usage.server_reserved,
        )
        limits = Limits(
            member_credits=usage.member_limit,
            server_credits=usage.server_limit,
            member_concurrent=settings.member_concurrent,
            server_concurrent=settings.server_concurrent,
        )
        verdict = quota_verdict(
            cost=cost,
            limits=limits,
            totals=totals,
            active_member=usage.member_active_jobs,
            active_server=usage.server_active_jobs,
            approvals=settings.approvals,
        )
        if verdict == "accept" or verdict == "pending":
            return
        raise QuotaExceeded(
            QuotaRefusal.of(
                verdict,
                cost=cost,
                limits=limits,
                totals=totals,
                active_member=usage.member_active_jobs,
                active_server=usage.server_active_jobs,
                window=settings.window(now),
            )
        )

    async def _view(self, request: Request) -> AdmissionView:
        job = request.job
        return await self._store.admission_view(
            job.guild_id,
            job.member_id,
            role_ids=request.role_ids,
            defaults=self._defaults,
            now=self._clock(),
        )

    async def accept(self, request: Request) -> JobRecord:
        """Reserve the credits and write the job, atomically, under the server's settings.

        The job comes back ACCEPTED, or PENDING_APPROVAL when it went to the moderators.
        Raises :class:`~bot.errors.QuotaExceeded` or :class:`RequestRefused`, having written
        nothing. Call :meth:`screen` first: this re-checks the gates but not the blocklist.
        """
        job = request.job
        cost = self.cost(job.resolution, job.duration)
        if self.closing:
            raise UserFacingError(RESTARTING)
        now = self._clock()
        try:
            record = await self._store.reserve_request(
                job,
                cost=cost,
                role_ids=request.role_ids,
                defaults=self._defaults,
                now=now,
                parent_channel_id=request.parent_channel_id,
                # Born leased to this process, so no sweep starts it before it is shown.
                owner=self._owner,
                lease_until=now + self._lease,
            )
        except GateClosed as closed:
            raise RequestRefused.from_gate(closed) from None
        metrics.job_accepted(record)
        log.info("job %d %s (%d credits)", record.id, record.state.value, cost)
        return record

    async def _provider_ready(self) -> None:
        """Refuse new work up front while the video service is failing; probe after a pause."""
        if self._breaker.trouble is None:
            return
        async with self._probe_lock:
            if self._breaker.probe_due():
                try:
                    await self._probe()
                except RunComfyError as exc:
                    log.info("video service probe failed: %s", exc)
        if self._breaker.trouble is not None:
            raise ProviderUnavailable(self._breaker.trouble)
