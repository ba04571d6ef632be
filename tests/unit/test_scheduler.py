"""The fair queue in front of the provider: a global cap, round-robin servers then members."""

from __future__ import annotations

import asyncio

import pytest

from bot.jobs.slots import FairQueue

A, B, C = 100, 200, 300


async def settle() -> None:
    """Let every runnable task take its next step."""
    for _ in range(10):
        await asyncio.sleep(0)


class Runner:
    """Starts acquire() calls as tasks and records the order in which they get a slot."""

    def __init__(self, queue: FairQueue) -> None:
        self.queue = queue
        self.started: list[int] = []
        self.tasks: dict[int, asyncio.Task[None]] = {}

    def want(self, guild: int, member: int, job: int) -> None:
        async def take() -> None:
            await self.queue.acquire(guild, member, job)
            self.started.append(job)

        self.tasks[job] = asyncio.create_task(take())

    async def finish(self, job: int) -> None:
        assert self.queue.release(job)
        await settle()

    async def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)


async def test_jobs_under_the_cap_start_at_once() -> None:
    queue = FairQueue(2)
    await queue.acquire(A, 1, 1)
    await queue.acquire(B, 2, 2)
    assert (queue.running, queue.waiting) == (2, 0)
    assert queue.holds_slot(1)
    assert queue.position(1) is None


async def test_round_robin_across_servers_then_members() -> None:
    queue = FairQueue(1)
    await queue.acquire(A, 1, 0)
    runner = Runner(queue)
    # Server A arrives first with a busy member (1) and a second member (2).
    for job, (guild, member) in {
        1: (A, 1),
        2: (A, 1),
        3: (A, 1),
        4: (A, 2),
        5: (B, 7),
        6: (B, 7),
        7: (C, 9),
    }.items():
        runner.want(guild, member, job)
    await settle()

    expected = [1, 5, 7, 4, 6, 2, 3]
    assert queue.order() == expected
    assert queue.positions() == {job: place for place, job in enumerate(expected, start=1)}
    assert queue.position(7) == 3
    assert queue.waiting == 7

    await runner.finish(0)
    for job in expected[:-1]:
        await runner.finish(job)
    assert runner.started == expected
    await runner.finish(expected[-1])
    assert (queue.running, queue.waiting) == (0, 0)


async def test_a_busy_server_cannot_starve_a_quiet_one() -> None:
    queue = FairQueue(2)
    await queue.acquire(A, 1, 1000)
    await queue.acquire(A, 1, 1001)
    runner = Runner(queue)
    for n in range(50):
        runner.want(A, n % 5, n)
    await settle()
    runner.want(B, 1, 999)
    await settle()
    # One job of A may be ahead of B's (A was next in turn), never more.
    assert queue.position(999) == 2
    await runner.finish(1000)
    await runner.finish(1001)
    assert runner.started == [0, 999]
    await runner.close()


async def test_members_of_one_server_take_turns() -> None:
    queue = FairQueue(1)
    await queue.acquire(A, 1, 0)
    runner = Runner(queue)
    for job in (1, 2, 3):
        runner.want(A, 1, job)
    runner.want(A, 2, 4)
    runner.want(A, 3, 5)
    await settle()
    assert queue.order() == [1, 4, 5, 2, 3]
    await runner.close()


async def test_positions_move_up_as_slots_free() -> None:
    changes: list[int] = []
    queue = FairQueue(1, on_change=lambda: changes.append(queue.waiting))
    await queue.acquire(A, 1, 0)
    runner = Runner(queue)
    runner.want(A, 1, 1)
    runner.want(B, 2, 2)
    await settle()
    assert (queue.position(1), queue.position(2)) == (1, 2)
    await runner.finish(0)
    assert (queue.position(1), queue.position(2)) == (None, 1)
    assert runner.started == [1]
    assert changes  # waiting jobs were told to refresh their line
    await runner.close()


async def test_a_cancelled_waiter_leaves_the_line() -> None:
    queue = FairQueue(1)
    await queue.acquire(A, 1, 0)
    runner = Runner(queue)
    runner.want(A, 1, 1)
    runner.want(B, 2, 2)
    runner.want(C, 3, 3)
    await settle()
    runner.tasks[2].cancel()
    await settle()
    assert queue.order() == [1, 3]
    assert queue.position(2) is None
    await runner.finish(0)
    await runner.finish(1)
    assert runner.started == [1, 3]
    await runner.finish(3)
    assert (queue.running, queue.waiting) == (0, 0)


async def test_a_slot_handed_to_a_waiter_cancelled_at_that_moment_is_passed_on() -> None:
    queue = FairQueue(1)
    await queue.acquire(A, 1, 0)
    runner = Runner(queue)
    runner.want(A, 1, 1)
    runner.want(B, 2, 2)
    await settle()
    # The slot goes to job 1, and job 1 is cancelled before it can run.
    assert queue.release(0)
    runner.tasks[1].cancel()
    await settle()
    assert runner.tasks[1].cancelled()
    assert runner.started == [2]
    assert (queue.running, queue.waiting) == (1, 0)
    assert queue.holds_slot(2)


async def test_slot_is_released_however_the_body_ends() -> None:
    queue = FairQueue(1)
    with pytest.raises(RuntimeError):
        async with queue.slot(A, 1, 1):
            assert queue.holds_slot(1)
            raise RuntimeError("provider fell over")
    assert queue.running == 0
    async with queue.slot(A, 1, 2):
        assert queue.running == 1
    assert queue.running == 0


async def test_a_job_cannot_queue_twice() -> None:
    queue = FairQueue(1)
    await queue.acquire(A, 1, 1)
    with pytest.raises(ValueError, match="already"):
        await queue.acquire(A, 1, 1)
    with pytest.raises(ValueError, match="already"):
        queue.admit_now(A, 1, 1)
    assert not queue.release(99)
    with pytest.raises(ValueError, match="capacity"):
        FairQueue(0)


async def test_jobs_already_at_the_provider_are_admitted_beyond_the_cap() -> None:
    queue = FairQueue(1)
    queue.admit_now(A, 1, 1)
    queue.admit_now(B, 2, 2)
    assert queue.running == 2
    runner = Runner(queue)
    runner.want(C, 3, 3)
    await settle()
    assert queue.position(3) == 1
    await runner.finish(1)
    assert runner.started == []  # still one job at the provider, which is the cap
    await runner.finish(2)
    assert runner.started == [3]
    await runner.close()


async def test_raising_the_capacity_admits_waiters_in_fair_order() -> None:
    queue = FairQueue(1)
    await queue.acquire(A, 1, 0)
    runner = Runner(queue)
    for job, guild in ((1, A), (2, A), (3, B)):
        runner.want(guild, job, job)
    await settle()
    queue.set_capacity(3)
    await settle()
    assert runner.started == [1, 3]
    assert queue.capacity == 3
    assert queue.order() == [2]
    await runner.close()


async def test_many_jobs_with_cancellations_never_exceed_the_cap_or_leak() -> None:
    queue = FairQueue(3)
    peak = 0
    done: list[int] = []

    async def job(guild: int, member: int, job_id: int) -> None:
        nonlocal peak
        async with queue.slot(guild, member, job_id):
            peak = max(peak, queue.running)
            await asyncio.sleep(0)
            done.append(job_id)

    tasks = [asyncio.create_task(job(n % 4, n % 7, n)) for n in range(120)]
    await asyncio.sleep(0)
    for task in tasks[::5]:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert peak == 3
    assert (queue.running, queue.waiting) == (0, 0)
    cancelled = sum(isinstance(r, asyncio.CancelledError) for r in results)
    assert len(done) + cancelled == 120
    assert cancelled >= 1
