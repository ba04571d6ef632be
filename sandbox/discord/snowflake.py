"""Discord snowflakes made from the wall clock, as Discord makes them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

DISCORD_EPOCH_MS = 1_420_070_400_000


class SnowflakeGenerator:
    """Issues unique, increasing snowflakes whose timestamp part is the current time.

    discord.py derives creation times (and an interaction's expiry) from ids, so they must
    carry the real time rather than a counter.
    """

    def __init__(
        self,
        worker_id: int = 1,
        process_id: int = 0,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._worker = worker_id & 0x1F
        self._process = process_id & 0x1F
        self._last_ms = 0
        self._increment = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        """Return a new snowflake for the current millisecond."""
        with self._lock:
            now_ms = int(self._clock() * 1000)
            if now_ms <= self._last_ms:
                # Same millisecond (or the clock stepped back): keep ids strictly increasing.
                self._increment += 1
                if self._increment > 0xFFF:
                    self._last_ms += 1
                    self._increment = 0
                now_ms = self._last_ms
            else:
                self._last_ms = now_ms
                self._increment = 0
            return (
                ((now_ms - DISCORD_EPOCH_MS) << 22)
                | (self._worker << 17)
                | (self._process << 12)
                | self._increment
            )


def snowflake_time(snowflake: int) -> datetime:
    """The creation time encoded in a snowflake."""
    ms = (snowflake >> 22) + DISCORD_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def iso_timestamp(moment: datetime) -> str:
    """Format a time the way Discord writes timestamps (ISO 8601 with microseconds)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def utcnow() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)
