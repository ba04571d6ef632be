"""Plain records the store hands out: job states, jobs, quota refusals and usage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

__all__ = [
    "FAILURE_STATES",
    "PROGRESS_STATES",
    "TERMINAL_STATES",
    "JobNotFound",
    "JobRecord",
    "JobState",
    "NewJob",
    "QuotaExceeded",
    "QuotaRefusal",
    "RefusalReason",
    "Usage",
]


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


class JobNotFound(LookupError):
    """No job has this id."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"no job with id {job_id}")
        self.job_id = job_id


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

    @property
    def member_left(self) -> int:
        """Credits the member could still spend this period."""
        return max(0, self.member_limit - self.member_used)

    @property
    def server_left(self) -> int:
        """Credits left in the server's pool this period."""
        return max(0, self.server_limit - self.server_used)


class QuotaExceeded(Exception):
    """A job does not fit the budgets or concurrency caps; nothing was charged."""

    def __init__(self, refusal: QuotaRefusal) -> None:
        r = refusal
        super().__init__(
            f"quota exceeded ({r.reason}): cost {r.cost}, member {r.member_used}/{r.member_limit}, "
            f"server {r.server_used}/{r.server_limit}, active jobs member {r.active_member} "
            f"server {r.active_server}, resets {r.resets_at.isoformat()}"
        )
        self.refusal = refusal


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
    def member_left(self) -> int:
        """Credits the member can still start jobs with this period."""
        return max(0, self.member_limit - self.member_used - self.member_reserved)

    @property
    def server_left(self) -> int:
        """Credits left in the server's pool this period."""
        return max(0, self.server_limit - self.server_used - self.server_reserved)
