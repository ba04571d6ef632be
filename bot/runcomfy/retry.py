"""Retry decisions as pure functions: what to retry, and how long to wait before trying again."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from bot.runcomfy.errors import RateLimitedError, ServerError, TransportError

# A server asking for a longer pause than this is waited on only this long: the job
# deadline, not the server's hint, decides when to give up.
MAX_RETRY_AFTER = 120.0


def should_retry(exc: BaseException) -> bool:
    """True for failures that an identical, idempotent request may get past."""
    return isinstance(exc, TransportError | RateLimitedError | ServerError)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), None if unusable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are always GMT; "-0000" parses as naive.
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def retry_delay(
    attempt: int,
    retry_after: float | None,
    *,
    base: float = 1.0,
    cap: float = 30.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to sleep before retry number ``attempt`` (0 for the first retry).

    Capped exponential backoff with equal jitter: between half and all of
    ``min(cap, base * 2**attempt)``. A server's ``retry_after`` is a floor, itself
    bounded by MAX_RETRY_AFTER.
    """
    ceiling = min(cap, base * 2.0 ** min(max(attempt, 0), 62))
    delay = ceiling / 2 + rand() * ceiling / 2
    if retry_after is not None and retry_after > delay:
        delay = min(retry_after, max(MAX_RETRY_AFTER, ceiling))
    return delay
