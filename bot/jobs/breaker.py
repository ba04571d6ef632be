"""A circuit breaker for the video service: stop taking jobs while it is failing.

Transient faults (timeouts, dropped connections, 5xx) open it after a run of failures; an
account fault (bad token, no balance) opens it at once. While open, new requests are refused
up front, before anything is reserved; after a cool-down one cheap probe decides whether to
close it again.

Several processes on one database share the breaker's state: a process whose breaker opens or
closes by what it saw tells the others (``share``), and each follows what it hears
(:meth:`CircuitBreaker.heard`), telling its own moderators once, so no process keeps taking
requests into an outage another one already saw, and each still probes on its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from bot.errors import UserFacingError
from bot.i18n import N_, _
from bot.ops import metrics
from bot.runcomfy.errors import (
    AuthError,
    NoBalanceError,
    RunComfyError,
    ServerError,
    TransportError,
    UnknownSubmissionError,
)

log = logging.getLogger(__name__)


class Trouble(StrEnum):
    OUTAGE = "outage"
    ACCOUNT = "account"


MEMBER_TEXT = {
    Trouble.OUTAGE: N_(
        "The video service is having trouble right now, so new videos are paused. "
        "Nothing was charged; please try again in a few minutes."
    ),
    Trouble.ACCOUNT: N_(
        "The video service is refusing the bot's account (its key or its balance), so new "
        "videos are paused until the operator fixes it. Nothing was charged."
    ),
}


class ProviderUnavailable(UserFacingError):
    """New requests are refused while the breaker is open."""

    def __init__(self, trouble: Trouble) -> None:
        super().__init__(_(MEMBER_TEXT[trouble]))
        self.trouble = trouble


@dataclass(frozen=True)
class Trip:
    """Why the breaker opened: what the operator and moderators are told, once."""

    trouble: Trouble
    detail: str


def classify(exc: RunComfyError) -> Trouble | None:
    """Which faults say something about the service as a whole (not about one job)."""
    if isinstance(exc, AuthError | NoBalanceError):
        return Trouble.ACCOUNT
    if isinstance(exc, TransportError | ServerError | UnknownSubmissionError):
        return Trouble.OUTAGE
    return None


class CircuitBreaker:
    """Closed → open after `threshold` consecutive outage faults or one account fault."""

    def __init__(
        self,
        *,
        threshold: int = 5,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_trip: Callable[[Trip], None] | None = None,
        share: Callable[[Trip | None], None] | None = None,
    ) -> None:
        self._threshold = threshold
        self._cooldown = cooldown
        self._clock = clock
        self._on_trip = on_trip
        self._share = share
        self._failures = 0
        self._open: Trip | None = None
        self._opened_at = 0.0
        metrics.BREAKER_OPEN.set(0)

    @property
    def trouble(self) -> Trouble | None:
        return self._open.trouble if self._open else None

    def probe_due(self) -> bool:
        """Open, and the cool-down has passed: the next caller should probe."""
        return self._open is not None and self._clock() - self._opened_at >= self._cooldown

    def observe(self, exc: RunComfyError | None) -> None:
        """Hear one provider call's outcome."""
        if exc is None:
            self.success()
        else:
            self.failure(exc)

    def success(self) -> None:
        was_open = self._open is not None
        if was_open:
            log.warning("the video service answers again; taking new jobs")
        self._failures = 0
        self._open = None
        metrics.BREAKER_OPEN.set(0)
        if was_open and self._share is not None:
            self._share(None)

    def heard(self, trip: Trip | None) -> None:
        """Another process's breaker opened (``trip``) or closed (None): follow it, without
        telling the others again."""
        if trip is None:
            if self._open is not None:
                log.warning("another process reaches the video service again; taking new jobs")
            self._failures = 0
            self._open = None
            metrics.BREAKER_OPEN.set(0)
        elif self._open is None:
            self._trip(trip, shared=False)

    def failure(self, exc: RunComfyError) -> None:
        trouble = classify(exc)
        if trouble is None:
            return
        if self._open is not None:
            # Still failing: restart the cool-down, but do not announce it again.
            self._opened_at = self._clock()
            return
        self._failures += 1
        if trouble is Trouble.ACCOUNT or self._failures >= self._threshold:
            self._trip(Trip(trouble, str(exc)))

    def _trip(self, trip: Trip, *, shared: bool = True) -> None:
        self._open = trip
        self._opened_at = self._clock()
        metrics.BREAKER_OPEN.set(1)
        metrics.BREAKER_TRIPS.labels(trouble=trip.trouble.value).inc()
        if shared:
            log.error("video service paused for new jobs (%s): %s", trip.trouble.value, trip.detail)
        else:
            log.warning("another process paused new jobs (%s): %s", trip.trouble.value, trip.detail)
        if self._on_trip is not None:
            self._on_trip(trip)
        if shared and self._share is not None:
            self._share(trip)
