"""The emulated Discord's sense of time: the wall clock, plus an offset tests move forward."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """Wall-clock and monotonic time as the emulator sees them.

    Moving the clock forward ages everything at once: messages (30046 applies to messages
    older than an hour), attachment URLs (they expire), interaction tokens and rate-limit
    windows. New snowflakes and timestamps carry the moved time too.
    """

    def __init__(self) -> None:
        self._offset = 0.0

    @property
    def offset(self) -> float:
        """How far ahead of the real clock the emulator is, in seconds."""
        return self._offset

    def time(self) -> float:
        """POSIX seconds."""
        return time.time() + self._offset

    def monotonic(self) -> float:
        """Monotonic seconds (for ages and windows)."""
        return time.monotonic() + self._offset

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> None:
        """Move time forward; it never goes back."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += seconds
