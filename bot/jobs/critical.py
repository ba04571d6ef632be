"""Submits and posts under way: the steps a graceful stop lets finish before it cuts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class CriticalSections:
    """Which jobs are in the middle of a submit or a post, and a way to wait until none is."""

    def __init__(self) -> None:
        self._jobs: set[int] = set()
        self._calm = asyncio.Event()
        self._calm.set()

    @contextlib.contextmanager
    def hold(self, job_id: int) -> Iterator[None]:
        """A submit or a post of ``job_id`` under way for the length of the block."""
        self._jobs.add(job_id)
        self._calm.clear()
        try:
            yield
        finally:
            self._jobs.discard(job_id)
            if not self._jobs:
                self._calm.set()

    async def calm(self, grace: float) -> None:
        """Wait (up to ``grace`` seconds) until no submit or post is under way."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._calm.wait()
