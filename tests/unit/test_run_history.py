"""The run-time history behind the poll schedule and the ETA: one store read for a burst."""

from __future__ import annotations

import asyncio

import pytest

from bot.jobs.history import RecentRuns


async def test_a_burst_of_jobs_reads_the_history_once_per_setting() -> None:
    reads: list[tuple[str, int]] = []

    async def read(resolution: str, duration: int) -> list[float]:
        reads.append((resolution, duration))
        await asyncio.sleep(0.01)
        return [30.0, 50.0, 40.0]

    runs = RecentRuns(read, ttl=60.0)
    got = await asyncio.gather(*(runs.expected("480p", 5) for _ in range(100)))
    assert got == [40.0] * 100
    assert reads == [("480p", 5)]
    assert await runs.expected("720p", 10) == 40.0
    assert reads == [("480p", 5), ("720p", 10)]


async def test_the_history_is_read_again_once_it_is_old() -> None:
    reads = 0

    async def read(_resolution: str, _duration: int) -> list[float]:
        nonlocal reads
        reads += 1
        return []

    runs = RecentRuns(read, ttl=0.0)
    assert await runs.expected("480p", 10) == 90.0  # no history: the typical figure
    assert await runs.expected("480p", 10) == 90.0
    assert reads == 2


async def test_a_failed_read_is_not_kept() -> None:
    answers: list[list[float] | Exception] = [RuntimeError("database is locked"), [12.0]]

    async def read(_resolution: str, _duration: int) -> list[float]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    runs = RecentRuns(read, ttl=60.0)
    with pytest.raises(RuntimeError):
        await runs.expected("480p", 5)
    assert await runs.expected("480p", 5) == 12.0
