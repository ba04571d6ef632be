"""Plain records of per-server moderation: settings, approvals, grants, resets, bans, audit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Literal

from bot.errors import UserFacingError
from bot.quota import Limits, Period, PeriodWindow, period_window
from bot.store.records import JobRecord

__all__ = [
    "BUDGET_FIELDS",
    "KEEP",
    "MAX_CONCURRENT",
    "MAX_CREDITS",
    "Approval",
    "ApprovalDecision",
    "ApprovalRequest",
    "AuditEntry",
    "Ban",
    "CreditGrant",
    "ForgetReport",
    "GuildDefaults",
    "GuildSettings",
    "Keep",
    "MemberBusy",
    "UsageReset",
]

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


class MemberBusy(UserFacingError):
    """The member still has jobs at the video service; they cannot be forgotten yet."""

    def __init__(self, active_jobs: int) -> None:
        super().__init__(
            f"That member still has {active_jobs} job(s) in progress. "
            "Try again once they have finished."
        )
        self.active_jobs = active_jobs
