"""The engine's errors: the ones a member may read as they are, and the ones the face renders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.i18n import Text

if TYPE_CHECKING:
    from bot.models import QuotaRefusal


class UserFacingError(Exception):
    """Raised where the member must be told something: `text` is worded in the member's
    language where the error is answered (a plain str is looked up in the catalogs as it
    is); `message` is the English (logs, tests)."""

    def __init__(self, message: str | Text) -> None:
        self.text = message if isinstance(message, Text) else Text(message)
        self.message = str(message)
        super().__init__(self.message)


class JobNotFound(LookupError):
    """No job has this id."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"no job with id {job_id}")
        self.job_id = job_id


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


class MemberBusy(Exception):
    """The member still has jobs at the video service; they cannot be forgotten yet."""

    def __init__(self, active_jobs: int) -> None:
        super().__init__(f"the member has {active_jobs} open job(s)")
        self.active_jobs = active_jobs


class GateClosed(Exception):
    """The store found a gate closed (paused, banned, channel) while reserving; nothing written."""

    def __init__(self, reason: str, allowed_channels: frozenset[int] = frozenset()) -> None:
        super().__init__(f"gate closed: {reason}")
        self.reason = reason
        self.allowed_channels = allowed_channels
