"""How long jobs with the same settings took to generate lately: read once, shared a while.

Every job asks when it starts polling, and every "generating" status message shows an ETA from
it. A burst of jobs would make that one store read per job and per status edit, on the same
lock every job's state changes wait for; the history moves slowly, so it is read at most once
per setting every `ttl` seconds, and callers asking meanwhile share that read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bot.jobs.polling import expected_run_seconds

Read = Callable[[str, int], Awaitable[list[float]]]
TTL = 30.0
"""Seconds a read of the history serves."""


class RecentRuns:
    """The expected generation time per (resolution, duration), from the store's history."""

    def __init__(self, read: Read, *, ttl: float = TTL) -> None:
        self._read = read
        self._ttl = ttl
        self._known: dict[tuple[str, int], tuple[float, asyncio.Future[float]]] = {}

    async def expected(self, resolution: str, duration: int) -> float:
        """The median of the recent run times of this setting (a typical figure without any)."""
        key = (resolution, duration)
        loop = asyncio.get_running_loop()
        known = self._known.get(key)
        if known is None or loop.time() - known[0] >= self._ttl:
            reading = asyncio.ensure_future(self._expected(resolution, duration))
            known = self._known[key] = (loop.time(), reading)
        try:
            return await asyncio.shield(known[1])
        except Exception:
            # A failed read is not kept: the next caller reads again.
            if self._known.get(key) is known:
                del self._known[key]
            raise

    async def _expected(self, resolution: str, duration: int) -> float:
        return expected_run_seconds(await self._read(resolution, duration), duration)
