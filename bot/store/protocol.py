"""The store as the engine sees it: Protocols for its repositories, whatever the backend.

Services type against :class:`Store`; ``bot.store.sqlite`` implements it today. The rules every
backend keeps (read by the store tests, which run against this interface):

- every state change of a job is a guarded transition, done in one transaction with the
  ledger change it implies (reserve on accept, commit on delivery, release on failure), and
  reports whether it happened;
- a reservation checks the gates and the budgets and writes the job atomically: concurrent
  callers can never spend more than a budget;
- datetimes go in and come out aware, in UTC.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.models import (
    KEEP,
    ApprovalRequest,
    AuditEntry,
    Ban,
    BlockRule,
    CreditGrant,
    ForgetReport,
    GuildDefaults,
    GuildSettings,
    JobRecord,
    JobState,
    Keep,
    NewJob,
    PoolUsage,
    ReportRow,
    RuleKind,
    Usage,
    UsageReset,
)
from bot.quota import Period
from bot.store.coordination import Signals


@dataclass(frozen=True)
class AdmissionView:
    """What admission reads before it fetches a request's images: one snapshot of one server
    for one member (see :meth:`ApprovalRepository.admission_view`)."""

    settings: GuildSettings
    """As :meth:`BudgetRepository.guild_settings` answers."""
    banned: bool
    """As :meth:`ModerationRepository.is_banned` answers."""
    rules: tuple[BlockRule, ...]
    """As :meth:`ModerationRepository.block_rules` answers, in the same order."""
    usage: Usage
    """As :meth:`BudgetRepository.member_usage` answers."""


class JobRepository(Protocol):
    """Jobs through their life, and installation facts."""

    async def cancel_unsent(self, job_id: int, *, error: str, now: datetime) -> bool:
        """ACCEPTED -> CANCELLED and its reservation released, whoever holds the job; False,
        changing nothing, once the job left ACCEPTED (its submit may have started)."""
        ...

    async def finish_delivered(
        self, job_id: int, *, result_message_id: int | None, now: datetime, owner: str | None = None
    ) -> bool:
        """Job -> DELIVERED and its reservation -> committed, in one transaction."""
        ...

    async def finish_failed(
        self, job_id: int, state: JobState, *, error: str, now: datetime, owner: str | None = None
    ) -> bool:
        """Job -> FAILED, CANCELLED or TIMED_OUT and its reservation released, in one …"""
        ...

    async def get_job(self, job_id: int) -> JobRecord | None:
        """The job with this id, or None."""
        ...

    async def get_meta(self, key: str) -> str | None:
        """A stored installation fact (for example the last command-sync hash), or None."""
        ...

    async def mark_submitting(
        self, job_id: int, now: datetime, *, owner: str | None = None
    ) -> bool:
        """ACCEPTED -> SUBMITTING, just before the one submit call."""
        ...

    async def mark_unknown_submission(
        self, job_id: int, *, error: str, now: datetime, owner: str | None = None
    ) -> bool:
        """The submit call's outcome is unknown: UNKNOWN_SUBMISSION, credits stay reserved."""
        ...

    async def recent_jobs(
        self, guild_id: int, member_id: int, *, limit: int = 10
    ) -> list[JobRecord]:
        """A member's latest jobs in a server, newest first."""
        ...

    async def open_jobs_in(self, guild_id: int, channel_id: int) -> list[JobRecord]:
        """The jobs of a channel (or thread) not settled yet, oldest first."""
        ...

    async def recent_run_seconds(
        self, resolution: str, duration: int, *, limit: int = 20
    ) -> list[float]:
        """Seconds from the start of generation to delivery of recent delivered jobs of …"""
        ...

    async def schema_version(self) -> int:
        """The applied migration version (``PRAGMA user_version``)."""
        ...

    async def set_meta(self, key: str, value: str) -> None:
        """Store an installation fact, replacing any previous value."""
        ...

    async def set_progress(
        self,
        job_id: int,
        state: JobState,
        *,
        queue_position: int | None,
        now: datetime,
        owner: str | None = None,
    ) -> JobRecord | None:
        """Record QUEUED/RUNNING/DELIVERING and the queue position; the job as stored, or None
        once it ended (changing nothing)."""
        ...

    async def set_status_message(
        self, job_id: int, message_id: int | None, *, now: datetime | None = None
    ) -> None:
        """Remember (or forget, with None) the channel message that shows the job's status."""
        ...

    async def set_submission(
        self,
        job_id: int,
        *,
        request_id: str,
        status_url: str,
        result_url: str,
        cancel_url: str,
        now: datetime,
    ) -> JobRecord:
        """Record the provider's request id and URLs; the job becomes QUEUED."""
        ...

    async def set_provider_cost(
        self, job_id: int, cost_usd: float, *, now: datetime | None = None
    ) -> None:
        """Record what the provider charged for the job, in USD (added in schema V4).

        Kept on the job (``JobRecord.cost_usd``) and summed per server and period: by
        :meth:`ReportRepository.pool_usage` (``PoolUsage.spent_usd``, ``priced_jobs``) and
        :meth:`ReportRepository.usage_rows` (``ReportRow.cost_usd``), by the job's acceptance
        time like its credits, and still counted after its member is forgotten.
        """
        ...

    async def set_video_url(self, job_id: int, url: str, *, now: datetime | None = None) -> None:
        """Remember the provider's output URL, so a restart can deliver without asking again."""
        ...


class LeaseRepository(Protocol):
    """Who drives each open job: leases claimed atomically and renewed by their owner."""

    async def claim_job(
        self, job_id: int, *, owner: str, until: datetime, now: datetime
    ) -> JobRecord | None:
        """Take the lease of a runnable job whose lease ran out, or that ``owner`` holds."""
        ...

    async def claimable_jobs(self, now: datetime, *, limit: int = 100) -> list[JobRecord]:
        """Runnable jobs nobody holds (lease run out or never taken), oldest first."""
        ...

    async def mark_final_shown(self, job_id: int, *, now: datetime) -> None:
        """The settled job's status message now shows how it ended (no-op for an open job)."""
        ...

    async def unshown_endings(self, since: datetime, *, limit: int = 50) -> list[JobRecord]:
        """Jobs settled since ``since``, with a status message never seen showing the end,
        oldest first: a restart shows their endings again."""
        ...

    async def mark_posting(self, job_id: int, *, owner: str, now: datetime) -> bool:
        """Record that posting the video starts now (so a restart looks for the post first)."""
        ...

    async def record_crash(
        self, job_id: int, *, owner: str, retry_at: datetime, now: datetime
    ) -> int:
        """Count a run of the job that ended in an unforeseen error and hand it back until …"""
        ...

    async def release_lease(
        self, job_id: int, *, owner: str, retry_at: datetime | None = None
    ) -> bool:
        """Hand a job back: nobody holds it, and any process may claim it from …"""
        ...

    async def renew_leases(
        self, owner: str, job_ids: Collection[int], *, until: datetime
    ) -> set[int]:
        """Extend the leases ``owner`` still holds among ``job_ids``; the ids renewed."""
        ...


class ApprovalRepository(Protocol):
    """Reserving a request under its server's settings, and the approval queue."""

    async def approve_request(
        self,
        guild_id: int,
        job_id: int,
        *,
        by: int,
        now: datetime | None = None,
        defaults: GuildDefaults | None = None,
    ) -> ApprovalRequest:
        """Let a waiting request run: ACCEPTED, its credits on the pool of the current period
        only, within the server's job cap (else QuotaExceeded, and it keeps waiting)."""
        ...

    async def deny_request(
        self,
        guild_id: int,
        job_id: int,
        *,
        by: int,
        reason: str | None = None,
        now: datetime | None = None,
    ) -> ApprovalRequest:
        """Refuse a waiting request: CANCELLED with the reason, credits released."""
        ...

    async def expire_approvals(
        self, *, older_than: datetime, now: datetime | None = None
    ) -> list[ApprovalRequest]:
        """End every request that has waited since before ``older_than``; the ones ended."""
        ...

    async def get_approval(self, job_id: int) -> ApprovalRequest | None:
        """The request for ``job_id`` if it ever went to the moderators, else None."""
        ...

    async def pending_approvals(self, guild_id: int | None = None) -> list[ApprovalRequest]:
        """Requests waiting for a moderator (in one server, or all), oldest first."""
        ...

    async def admission_view(
        self,
        guild_id: int,
        member_id: int,
        *,
        role_ids: Collection[int],
        defaults: GuildDefaults,
        now: datetime,
    ) -> AdmissionView:
        """Everything admission checks before fetching images, in one snapshot, as one call.

        Each part is exactly what ``guild_settings``, ``is_banned``, ``block_rules`` and
        ``member_usage`` would answer at that moment, all read in one read transaction so
        they agree with each other, and (the point of the method) in one round trip to the
        database rather than one per query: it runs on every ``/animate``. A read: nothing
        is reserved or written; :meth:`reserve_request` still decides, atomically.
        """
        ...

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
        """Accept a request under its server's settings, atomically; the stored job."""
        ...

    async def set_approval_message(self, job_id: int, message_id: int | None) -> None:
        """Remember the mod-log message that carries the request's buttons."""
        ...

    async def withdraw_request(
        self, job_id: int, *, member_id: int, now: datetime | None = None
    ) -> ApprovalRequest:
        """The requester takes back a request still waiting for a moderator."""
        ...


class BudgetRepository(Protocol):
    """Each server's budgets, switches, grants and resets, and members' usage."""

    async def grant_credits(
        self,
        guild_id: int,
        member_id: int,
        credits: int,
        *,
        defaults: GuildDefaults,
        by: int,
        now: datetime | None = None,
        reason: str | None = None,
    ) -> CreditGrant:
        """Raise (or, negative, lower) one member's cap for the current period only."""
        ...

    async def guild_settings(self, guild_id: int, defaults: GuildDefaults) -> GuildSettings:
        """The server's settings, ``defaults`` filling in what it never set."""
        ...

    async def member_usage(
        self,
        guild_id: int,
        member_id: int,
        *,
        role_ids: Collection[int],
        defaults: GuildDefaults,
        now: datetime,
    ) -> Usage:
        """The member's and the server's credits in the server's current period, one snapshot."""
        ...

    async def reset_usage(
        self,
        guild_id: int,
        member_id: int | None,
        *,
        defaults: GuildDefaults,
        by: int,
        now: datetime | None = None,
    ) -> UsageReset:
        """Stop everything started so far in this period from counting."""
        ...

    async def set_approvals(
        self, guild_id: int, enabled: bool, *, by: int, now: datetime | None = None
    ) -> None:
        """Turn the approval queue on or off. Requests already waiting stay waiting."""
        ...

    async def set_guild_budget(
        self,
        guild_id: int,
        *,
        by: int,
        now: datetime | None = None,
        period: Period | Keep | None = KEEP,
        server_credits: int | Keep | None = KEEP,
        member_credits: int | Keep | None = KEEP,
        member_concurrent: int | Keep | None = KEEP,
        server_concurrent: int | Keep | None = KEEP,
    ) -> None:
        """Change some of the server's budgets; ``None`` puts one back to the default."""
        ...

    async def set_modlog_channel(
        self, guild_id: int, channel_id: int | None, *, by: int, now: datetime | None = None
    ) -> None:
        """Where job entries and approval requests are posted (None: nowhere)."""
        ...

    async def set_paused(
        self, guild_id: int, paused: bool, *, by: int, now: datetime | None = None
    ) -> None:
        """The kill switch: while paused, no request is accepted or approved in the server."""
        ...

    async def set_role_limit(
        self,
        guild_id: int,
        role_id: int,
        credits: int | None,
        *,
        by: int,
        now: datetime | None = None,
    ) -> None:
        """Give members with ``role_id`` a cap of ``credits`` (None removes the role's limit)."""
        ...


class ModerationRepository(Protocol):
    """Allowed channels, bans, the blocklist's rules, forgetting a member, the audit trail."""

    async def add_block_rule(
        self, guild_id: int, kind: RuleKind, pattern: str, *, by: int, now: datetime | None = None
    ) -> BlockRule:
        """Store a blocklist rule as given (normalised and vetted by the caller); the …"""
        ...

    async def allow_channel(
        self, guild_id: int, channel_id: int, *, by: int, now: datetime | None = None
    ) -> bool:
        """Add a channel to the allowed list (the first one restricts the bot to the list)."""
        ...

    async def audit_log(self, guild_id: int, *, limit: int = 25) -> list[AuditEntry]:
        """The server's latest moderator actions, newest first."""
        ...

    async def ban_member(
        self,
        guild_id: int,
        member_id: int,
        *,
        by: int,
        reason: str | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Stop a member from using the bot in the server; False if already banned."""
        ...

    async def banned_members(self, guild_id: int) -> list[Ban]:
        """The server's bans, oldest first."""
        ...

    async def block_rules(self, guild_id: int) -> list[BlockRule]:
        """The server's blocklist, in the order rules were added."""
        ...

    async def clear_channels(self, guild_id: int, *, by: int, now: datetime | None = None) -> int:
        """Allow every channel again; returns how many entries were removed."""
        ...

    async def disallow_channel(
        self, guild_id: int, channel_id: int, *, by: int, now: datetime | None = None
    ) -> bool:
        """Remove a channel from the allowed list (an empty list allows every channel)."""
        ...

    async def forget_member(
        self, guild_id: int, member_id: int, *, by: int, now: datetime | None = None
    ) -> ForgetReport:
        """Delete one member's prompts and jobs in this server."""
        ...

    async def is_banned(self, guild_id: int, member_id: int) -> bool:
        """True if the member is banned from the bot in this server."""
        ...

    async def remove_block_rule(
        self, guild_id: int, rule_id: int, *, by: int, now: datetime | None = None
    ) -> BlockRule | None:
        """Remove rule ``rule_id`` of this server; the removed rule, or None if none had it."""
        ...

    async def unban_member(
        self, guild_id: int, member_id: int, *, by: int, now: datetime | None = None
    ) -> bool:
        """Let a banned member use the bot again; False if they were not banned."""
        ...


class ReportRepository(Protocol):
    """Usage reports for operators and moderators."""

    async def pool_usage(
        self, guild_id: int, *, defaults: GuildDefaults, now: datetime
    ) -> PoolUsage:
        """The server's pool in the period containing ``now``, with its open jobs."""
        ...

    async def usage_rows(
        self, *, guild_id: int | None = None, since: datetime | None = None
    ) -> list[ReportRow]:
        """Jobs and credits per server and member, sorted by server then member."""
        ...


class Store(
    JobRepository,
    LeaseRepository,
    ApprovalRepository,
    BudgetRepository,
    ModerationRepository,
    ReportRepository,
    Signals,
    Protocol,
):
    """Everything the engine keeps: one object per process, opened by ``main()``."""
