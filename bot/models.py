"""Plain data the engine passes around: jobs and their states, quota figures, server settings.

No I/O and no policy beyond what a value knows about itself; the store hands these out and the
services and cogs read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from typing import Literal

from bot.quota import CreditTotals, Limits, Period, PeriodWindow, period_window


class JobState(StrEnum):
    """Where a job is in its life. Terminal states never change again."""

    ACCEPTED = "accepted"
    """Row written and credits reserved; nothing sent to the provider yet."""
    SUBMITTING = "submitting"
    """Submit request sent, no request id yet. A crash here leaves an unknown submission."""
    QUEUED = "queued"
    RUNNING = "running"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    UNKNOWN_SUBMISSION = "unknown_submission"
    """The provider may or may not have the job; credits stay reserved until it is resolved."""
    PENDING_APPROVAL = "pending_approval"
    """Over the member's cap: waits for a moderator, holding its credits in the server pool.
    Approval turns it ACCEPTED; a denial (or withdrawal) ends it CANCELLED with the reason."""

    @property
    def is_terminal(self) -> bool:
        """True once the job is settled: its credits are committed or released for good."""
        return self in TERMINAL_STATES


TERMINAL_STATES: frozenset[JobState] = frozenset(
    {JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED, JobState.TIMED_OUT}
)
FAILURE_STATES: frozenset[JobState] = frozenset(
    {JobState.FAILED, JobState.CANCELLED, JobState.TIMED_OUT}
)
"""Terminal states that release the reservation (everything terminal but delivered)."""
PROGRESS_STATES: frozenset[JobState] = frozenset(
    {JobState.QUEUED, JobState.RUNNING, JobState.DELIVERING}
)
"""States the runner reports while the provider works on a job."""


@dataclass(frozen=True)
class NewJob:
    """A validated /animate request, before it has an id or a cost."""

    guild_id: int
    channel_id: int
    member_id: int
    prompt: str
    image_url: str
    last_frame_url: str | None
    resolution: str
    duration: int


@dataclass(frozen=True)
class JobRecord:
    """One job as stored. Datetimes are aware UTC."""

    id: int
    guild_id: int
    channel_id: int
    member_id: int
    prompt: str
    image_url: str
    last_frame_url: str | None
    resolution: str
    duration: int
    credits: int
    state: JobState
    request_id: str | None
    status_url: str | None
    result_url: str | None
    cancel_url: str | None
    queue_position: int | None
    status_message_id: int | None
    result_message_id: int | None
    video_url: str | None
    error: str | None
    period_key: str
    created_at: datetime
    submitted_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    owner: str | None = None
    """The process driving the job while its lease runs (None: nobody)."""
    lease_until: datetime | None = None
    attempts: int = 0
    """Runs of the job that ended in an unforeseen error."""
    posting_at: datetime | None = None
    """When posting the video to Discord started (a restart looks for the post first)."""
    cost_usd: float | None = None
    """What the provider charged for it in USD, when its result said (None: unknown)."""


RefusalReason = Literal[
    "member_credits", "server_credits", "member_concurrent", "server_concurrent"
]


@dataclass(frozen=True)
class QuotaRefusal:
    """Why a job was refused, with the numbers to show the member.

    ``member_used`` and ``server_used`` count every credit held in the period: committed by
    delivered jobs plus reserved by open ones. ``resets_at`` is when the period ends.
    """

    reason: RefusalReason
    cost: int
    member_used: int
    member_limit: int
    server_used: int
    server_limit: int
    active_member: int
    active_server: int
    resets_at: datetime
    period: Period
    """The server's accounting period the credits were counted in."""

    @classmethod
    def of(
        cls,
        reason: RefusalReason,
        *,
        cost: int,
        limits: Limits,
        totals: CreditTotals,
        active_member: int,
        active_server: int,
        window: PeriodWindow,
    ) -> QuotaRefusal:
        """The refusal :func:`~bot.quota.quota_verdict` gave, with the figures it judged."""
        return cls(
            reason=reason,
            cost=cost,
            member_used=totals.member_held,
            member_limit=limits.member_credits,
            server_used=totals.server_held,
            server_limit=limits.server_credits,
            active_member=active_member,
            active_server=active_server,
            resets_at=window.end,
            period=window.period,
        )

    @property
    def member_left(self) -> int:
        """Credits the member could still spend this period."""
        return max(0, self.member_limit - self.member_used)

    @property
    def server_left(self) -> int:
        """Credits left in the server's pool this period."""
        return max(0, self.server_limit - self.server_used)


@dataclass(frozen=True)
class Usage:
    """Credits and jobs of one member and their server in the current period."""

    period_key: str
    resets_at: datetime
    member_used: int
    """Credits committed by the member's delivered jobs this period."""
    member_reserved: int
    """Credits held by the member's jobs that are still open."""
    member_limit: int
    server_used: int
    server_reserved: int
    server_limit: int
    member_active_jobs: int
    server_active_jobs: int
    member_approved: int = 0
    """Credits of the member's jobs a moderator approved beyond the cap (held or committed).
    They count against the server pool only, not in member_used or member_reserved."""
    member_pending: int = 0
    """Credits of the member's requests waiting for a moderator, held in the server pool."""

    @property
    def period(self) -> Period:
        """The server's accounting period this usage is counted in."""
        return Period.of_key(self.period_key)

    @property
    def member_left(self) -> int:
        """Credits the member can still start jobs with this period."""
        return max(0, self.member_limit - self.member_used - self.member_reserved)

    @property
    def server_left(self) -> int:
        """Credits left in the server's pool this period."""
        return max(0, self.server_limit - self.server_used - self.server_reserved)


MAX_CREDITS = 1_000_000_000
"""Upper bound of any credit figure a moderator can set, so sums stay far from overflow."""
MAX_CONCURRENT = 1000

BUDGET_FIELDS = (
    "period",
    "server_credits",
    "member_credits",
    "member_concurrent",
    "server_concurrent",
)
"""The settings that fall back to :class:`GuildDefaults` until a server sets its own."""


class Keep(Enum):
    """The type of :data:`KEEP`."""

    KEEP = "keep"


KEEP = Keep.KEEP
"""Leave a setting as it is (``None`` instead means: back to the configured default)."""


@dataclass(frozen=True)
class GuildDefaults:
    """What a server that never changed a budget gets: the operator's ``[quota]`` config."""

    period: Period = Period.DAY
    server_credits: int = 100
    member_credits: int = 10
    member_concurrent: int = 1
    server_concurrent: int = 5

    def __post_init__(self) -> None:
        for name in ("server_credits", "member_credits"):
            if not 0 <= getattr(self, name) <= MAX_CREDITS:
                raise ValueError(f"GuildDefaults.{name} must be 0..{MAX_CREDITS}")
        for name in ("member_concurrent", "server_concurrent"):
            if not 1 <= getattr(self, name) <= MAX_CONCURRENT:
                raise ValueError(f"GuildDefaults.{name} must be 1..{MAX_CONCURRENT}")


@dataclass(frozen=True)
class GuildSettings:
    """Everything a server's moderators control, with the defaults filled in."""

    guild_id: int
    period: Period
    server_credits: int
    """The server's pool: credits all members together may use per period."""
    member_credits: int
    """The default cap of one member per period, before role limits and grants."""
    member_concurrent: int
    server_concurrent: int
    approvals: bool
    """Requests over a member's cap go to the moderators instead of being refused."""
    paused: bool
    modlog_channel_id: int | None
    allowed_channels: frozenset[int]
    """Empty: every channel is allowed."""
    role_limits: Mapping[int, int] = field(hash=False)
    """Role id -> member cap for members with that role."""
    customised: frozenset[str]
    """Which of :data:`BUDGET_FIELDS` this server set itself (the rest are defaults)."""

    def channel_allowed(self, channel_id: int, parent_id: int | None = None) -> bool:
        """True if jobs may run in ``channel_id`` (or, for a thread, its ``parent_id``)."""
        if not self.allowed_channels:
            return True
        return channel_id in self.allowed_channels or parent_id in self.allowed_channels

    def member_cap(self, role_ids: Iterable[int]) -> int:
        """The cap of a member with these roles, before grants.

        The most generous wins: the larger of the server default and every limit of the
        member's roles. A role limit therefore only ever raises a cap; to hold members back,
        lower the default and raise trusted roles (or ban).
        """
        return max([self.member_credits, *(self.role_limits.get(r, 0) for r in role_ids)])

    def window(self, now: datetime) -> PeriodWindow:
        """The server's accounting period containing ``now``."""
        return period_window(self.period, now)

    def limits(self, role_ids: Iterable[int], granted: int = 0) -> Limits:
        """Budgets for one member: role-based cap plus this period's grants, and the pool."""
        return Limits(
            member_credits=max(0, self.member_cap(role_ids) + granted),
            server_credits=self.server_credits,
            member_concurrent=self.member_concurrent,
            server_concurrent=self.server_concurrent,
        )


ApprovalDecision = Literal["approved", "denied", "withdrawn", "expired"]


@dataclass(frozen=True)
class Approval:
    """A request that went to the moderators, and what became of it."""

    job_id: int
    guild_id: int
    requested_at: datetime
    message_id: int | None
    """The mod-log message with the Approve / Deny buttons, once posted."""
    decision: ApprovalDecision | None
    """None while it waits."""
    decided_by: int | None
    reason: str | None
    decided_at: datetime | None


@dataclass(frozen=True)
class ApprovalRequest:
    """A job waiting for (or decided by) a moderator."""

    job: JobRecord
    approval: Approval
    changed: bool = False
    """True when the call that returned this made the decision (False: already decided)."""


@dataclass(frozen=True)
class CreditGrant:
    """Extra credits for one member in the current period."""

    id: int
    guild_id: int
    member_id: int
    credits: int
    period_key: str
    granted_by: int
    created_at: datetime
    period_total: int
    """All of the member's grants in this period, this one included."""


@dataclass(frozen=True)
class UsageReset:
    """A reset of one member's usage (``member_id``) or of the whole server (None)."""

    id: int
    guild_id: int
    member_id: int | None
    forgiven: int
    """Credits that stopped counting: committed and held by jobs started before the reset."""
    period_key: str
    reset_by: int
    created_at: datetime


@dataclass(frozen=True)
class Ban:
    guild_id: int
    member_id: int
    reason: str | None
    banned_by: int
    banned_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    """One moderator action."""

    id: int
    guild_id: int
    actor_id: int
    action: str
    target_id: int | None
    detail: str
    created_at: datetime


@dataclass(frozen=True)
class ForgetReport:
    """What :meth:`Store.forget_member` removed."""

    jobs_deleted: int
    requests_withdrawn: int
    """Requests that were still waiting for a moderator."""
    ledger_rows_anonymised: int
    """Charges kept (so the server's pool stays right) but no longer tied to the member."""
    grants_deleted: int


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
    cost_usd: float = 0.0
    """What the provider charged for these jobs in USD, as their results reported it."""

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
    spent_usd: float = 0.0
    """What the provider charged in USD for the period's jobs, as their results reported it."""
    priced_jobs: int = 0
    """How many of the period's jobs came back with a cost."""

    @property
    def left(self) -> int:
        """Credits the server can still spend this period."""
        return max(0, self.limit - self.used - self.held)


RuleKind = Literal["word", "regex"]


@dataclass(frozen=True)
class BlockRule:
    """One blocklist entry. ``id`` is the store's number for it (None before it is stored)."""

    kind: RuleKind
    pattern: str
    id: int | None = field(default=None, compare=False)

    def describe(self) -> str:
        """How a member is told which rule refused them, without showing the pattern."""
        what = "a blocked word" if self.kind == "word" else "a blocked pattern"
        return f"rule #{self.id} ({what})" if self.id is not None else what
