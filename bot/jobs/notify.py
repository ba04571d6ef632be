"""How the engine reports outward: the two small protocols the Discord face implements.

The requester hears about their job through a `JobNotifier` (its status, then the video); the
moderators hear through the `ModeratorDesk` (a request over a cap, a settled job, trouble with
the video service). The requester's notifier never writes the moderators' log.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from bot.jobs.breaker import Trip
from bot.models import JobRecord


@dataclass(frozen=True)
class Delivery:
    """A finished video: the local file when it could be fetched, always the provider's URL."""

    video_url: str
    file: Path | None
    size: int | None
    cut: bool = False
    """No file because every download was cut short (else: too large to fetch)."""


class PostRefused(Exception):
    """The channel will not take the video's post at all (the bot lost access, or the channel
    is gone): an operational fact, not a fault of the bot; posting again would not help."""


class CancelResult(StrEnum):
    CANCELLED = "cancelled"
    NOT_ALLOWED = "not_allowed"
    NOT_CANCELLABLE = "not_cancellable"
    FINISHED = "finished"
    UNKNOWN = "unknown"


class JobNotifier(Protocol):
    """How one job shows itself to its requester; implemented by the Discord side."""

    async def job_changed(self, job: JobRecord) -> None:
        """Show the job's new state (queued, running, finished, failed ...)."""

    async def deliver(self, job: JobRecord, delivery: Delivery) -> int | None:
        """Post the finished video; return the message id. Raise to report a failed post
        (`PostRefused` when the channel will not take it at all)."""

    async def find_delivery(self, job: JobRecord) -> int | None:
        """The id of the video's post if an earlier attempt made it (None: not posted)."""


class ModeratorDesk(Protocol):
    """How the moderators of a server hear from the engine; implemented by the Discord side."""

    async def approval_needed(self, job: JobRecord) -> int | None:
        """Ask the moderators about an over-cap request; the message id, None if nowhere."""

    async def job_settled(self, job: JobRecord) -> None:
        """Record a job that ended (delivered, failed, cancelled, timed out)."""

    async def provider_trouble(self, trip: Trip) -> None:
        """Tell every server's moderators, once, that the video service stopped working."""


class Notify(Protocol):
    """How the state machine has a job's change shown: as stored now, or as the record the
    change just wrote (``job``)."""

    def __call__(
        self, job_id: int, notifier: JobNotifier | None, job: JobRecord | None = None
    ) -> Awaitable[None]: ...
