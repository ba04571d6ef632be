"""The provider's cap and fair line across processes on one PostgreSQL database, and the
signals that wake them: several stores on one database stand for several bot processes."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest

from bot.jobs.shared_slots import SharedSlots
from bot.models import JobRecord, JobState, NewJob
from bot.quota import Limits, Period, period_window
from bot.store import Store
from bot.store.coordination import ProviderSlots
from tests.harness.backends import Backend
from tests.harness.discord_fakes import eventually
from tests.harness.store_calls import reserve_job

pytestmark = pytest.mark.store_backends("postgres")

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = period_window(Period.DAY, NOW)
LIMITS = Limits(member_credits=100, server_credits=1000, member_concurrent=50, server_concurrent=50)
LEASE = timedelta(seconds=30)


def ticking(start: datetime = NOW) -> Callable[[], datetime]:
    """A clock that moves one millisecond per reading: asks are ordered as they are made."""
    steps = itertools.count()
    return lambda: start + timedelta(milliseconds=next(steps))


async def job_of(
    store: Store, *, guild: int = 1000, member: int = 11, owner: str, until: datetime = NOW + LEASE
) -> JobRecord:
    """An accepted job, held by ``owner`` until ``until``."""
    new = NewJob(guild, guild + 1, member, "a cat", "https://cdn.test/a.png", None, "480p", 5)
    job = await reserve_job(store, new, cost=1, limits=LIMITS, window=TODAY, now=NOW)
    claimed = await store.claim_job(job.id, owner=owner, until=until, now=NOW)
    assert claimed is not None
    return claimed


@asynccontextmanager
async def processes(
    backend: Backend, count: int, *, capacity: int
) -> AsyncIterator[list[tuple[Store, SharedSlots]]]:
    """``count`` stores on the test's database, each with its process's shared line, woken by
    the others' signals as the runner wires them."""
    clock = ticking()  # one clock for all: asks are ordered as they are made
    async with AsyncExitStack() as stack:
        made = []
        for n in range(count):
            store = await stack.enter_async_context(backend.open())
            assert isinstance(store, ProviderSlots)
            slots = SharedSlots(
                store, capacity=capacity, owner=f"p{n}", clock=clock, poll_seconds=0.5
            )
            stack.push_async_callback(slots.close)

            def heard(topic: str, _text: str, slots: SharedSlots = slots) -> None:
                if topic in ("slots", "resync"):
                    slots.wake()

            await store.listen(heard)
            made.append((store, slots))
        yield made


async def run_at_provider(
    store: Store, slots: SharedSlots, job: JobRecord, owner: str, seen: list[int]
) -> None:
    """What a run does with a slot: send the job, keep it at the provider a moment, finish."""
    await slots.acquire(job.guild_id, job.member_id, job.id)
    try:
        seen.append(job.id)
        assert await store.mark_submitting(job.id, NOW, owner=owner)
        await store.set_submission(
            job.id, request_id=f"r{job.id}", status_url="", result_url="", cancel_url="", now=NOW
        )
        await asyncio.sleep(0.02)
        seen.remove(job.id)
        assert await store.finish_delivered(job.id, result_message_id=None, now=NOW, owner=owner)
    finally:
        slots.release(job.id)


async def test_the_cap_holds_across_processes_racing_for_slots(backend: Backend) -> None:
    async with processes(backend, 3, capacity=2) as procs:
        at_provider: list[int] = []
        most = most_held = 0

        async def watch() -> None:
            nonlocal most, most_held
            while True:
                most = max(most, len(at_provider))
                # What each process reports as its jobs holding slots (the metric).
                most_held = max(most_held, sum(slots.held for _, slots in procs))
                await asyncio.sleep(0)

        jobs = []
        for n in range(12):
            store, slots = procs[n % 3]
            job = await job_of(store, member=100 + n, owner=f"p{n % 3}")
            jobs.append(run_at_provider(store, slots, job, f"p{n % 3}", at_provider))
        watcher = asyncio.create_task(watch())
        await asyncio.gather(*jobs)
        watcher.cancel()
        store = procs[0][0]
        delivered = await store.recent_jobs(1000, 100, limit=1)
        assert delivered[0].state is JobState.DELIVERED
        assert [slots.held for _, slots in procs] == [0, 0, 0]
    assert most == most_held == 2


async def test_slots_go_round_servers_then_members_whichever_process_asks(
    backend: Backend,
) -> None:
    async with processes(backend, 2, capacity=1) as procs:
        first, p0 = procs[0]
        blocker = await job_of(first, guild=9000, member=1, owner="p0")
        await p0.acquire(blocker.guild_id, blocker.member_id, blocker.id)
        # Asked in this order, by two processes: server A's three members, then B, then C.
        plan = [
            ("A1", 1000, 11, 0),
            ("A2", 1000, 12, 1),
            ("A3", 1000, 13, 0),
            ("B", 2000, 21, 1),
            ("C", 3000, 31, 0),
        ]
        order: list[str] = []
        waiting = []
        for name, guild, member, n in plan:
            store, slots = procs[n]
            job = await job_of(store, guild=guild, member=member, owner=f"p{n}")

            async def run(
                store: Store = store, slots: SharedSlots = slots, job: JobRecord = job,
                name: str = name, n: int = n,
            ) -> None:  # fmt: skip
                await run_at_provider(store, slots, job, f"p{n}", [])
                order.append(name)

            waiting.append(asyncio.create_task(run()))
            # Each ask is in the line before the next one is made.
            await eventually(lambda slots=slots, job=job: _placed(slots, job))
        assert not any(task.done() for task in waiting)
        p0.release(blocker.id)
        assert await first.finish_delivered(blocker.id, result_message_id=None, now=NOW)
        await asyncio.gather(*waiting)
    assert order == ["A1", "B", "C", "A2", "A3"]


async def _placed(slots: SharedSlots, job: JobRecord) -> bool:
    return slots.position(job.id) is not None


async def test_a_dead_process_frees_its_unsent_slots_when_its_leases_run_out(
    store: Store,
) -> None:
    assert isinstance(store, ProviderSlots)
    # p0 was granted a slot, then died before sending the job.
    dead = await job_of(store, member=1, owner="p0")
    await store.ask_slot(dead.id, dead.guild_id, dead.member_id, owner="p0", now=NOW)
    assert (await store.grant_slots("p0", capacity=2, now=NOW)).granted == (dead.id,)
    # A job it had sent stays at the provider whoever runs it: it keeps its slot.
    sent = await job_of(store, member=2, owner="p0")
    assert await store.mark_submitting(sent.id, NOW, owner="p0")

    alive = await job_of(store, member=3, owner="p1", until=NOW + 3 * LEASE)
    await store.ask_slot(alive.id, alive.guild_id, alive.member_id, owner="p1", now=NOW)
    turn = await store.grant_slots("p1", capacity=2, now=NOW + timedelta(seconds=1))
    assert (turn.granted, turn.order, turn.in_use) == ((), (alive.id,), 2)

    later = NOW + LEASE + timedelta(seconds=1)
    turn = await store.grant_slots("p1", capacity=2, now=later)
    assert (turn.granted, turn.order, turn.in_use) == ((alive.id,), (), 2)


async def test_a_job_cancelled_elsewhere_stops_waiting_and_is_never_sent(
    backend: Backend,
) -> None:
    async with processes(backend, 2, capacity=1) as procs:
        (first, p0), (second, _) = procs
        blocker = await job_of(first, member=1, owner="p0")
        await p0.acquire(blocker.guild_id, blocker.member_id, blocker.id)
        job = await job_of(first, member=2, owner="p0")
        waiter = asyncio.create_task(p0.acquire(job.guild_id, job.member_id, job.id))
        await eventually(lambda: _placed(p0, job))

        # The click reaches the other process: the job ends there, through the database.
        assert await second.cancel_unsent(job.id, error="Cancelled by its requester.", now=NOW)
        await asyncio.wait_for(waiter, 5)
        assert not p0.holds_slot(job.id)
        assert not await first.mark_submitting(job.id, NOW, owner="p0")
        ended = await first.get_job(job.id)
        assert ended is not None and ended.state is JobState.CANCELLED
        p0.release(job.id)
        p0.release(blocker.id)


async def test_signals_reach_every_process_on_the_database(backend: Backend) -> None:
    async with backend.open() as one, backend.open() as two:
        heard: list[tuple[str, str]] = []
        await two.listen(lambda topic, text: heard.append((topic, text)))
        await one.send_signal("stop", "42")
        job = await job_of(one, owner="p0")
        await one.finish_failed(job.id, JobState.FAILED, error="x", now=NOW)

        async def both() -> bool:
            return ("stop", "42") in heard and ("slots", "") in heard

        await eventually(both)
