"""The ways the store benchmark calls `Store.reserve_request`, and what a run measured.

Every run opens its store (PostgreSQL: a pool of 10 connections, all opened at once) and
makes 10 reservations at once on servers of their own before it is timed, as a bot that has
been running a while has its connections open and its statements prepared. Runs of several
processes then start together: every process has opened and warmed its store before any
starts reserving (a barrier), and the processor time of the machine and of the PostgreSQL
server is read between that start and the moment the last of them has finished.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing import get_context
from threading import Barrier
from typing import Any

from bench.cpu import Machine, Server, busy_between
from bot.errors import QuotaExceeded
from bot.models import GuildDefaults, NewJob
from bot.store import Store, open_store
from bot.store.postgres import PostgresStore

__all__ = [
    "CALLERS",
    "CONNECTIONS",
    "COST",
    "POOL",
    "PROCESSES",
    "RACERS",
    "RACE_DEFAULTS",
    "Run",
    "in_processes",
    "pool_spent",
    "race",
    "sequential",
    "steady",
    "timed",
]

RACERS = 200
PROCESSES = 4
POOL = 150
COST = 1
CONNECTIONS = 10
"""A PostgreSQL store's pool, as the bot opens it (its default size)."""
# Caps high enough that only the pool limits the races.
DEFAULTS = GuildDefaults(
    server_credits=1_000_000,
    member_credits=1_000_000,
    member_concurrent=1000,
    server_concurrent=1000,
)
RACE_DEFAULTS = GuildDefaults(
    server_credits=POOL, member_credits=1_000_000, member_concurrent=1000, server_concurrent=1000
)
JOBS_PER_GUILD = 900  # under the server's concurrency cap of 1,000 open jobs
CALLERS = 10  # per process, each on a server of its own
WARM_GUILD = 700_000
"""The first of the servers the untimed warm-up reservations go to."""
BARRIER_TIMEOUT = 600.0

Results = list[tuple[bool, float]]
Work = Callable[[Store], Awaitable[Results]]


def request(guild_id: int, member_id: int) -> NewJob:
    return NewJob(
        guild_id=guild_id,
        channel_id=guild_id * 10,
        member_id=member_id,
        prompt="a lighthouse in a storm",
        image_url="https://cdn.discordapp.com/attachments/1/2/frame.png",
        last_frame_url=None,
        resolution="480p",
        duration=5,
    )


async def reserve(store: Store, job: NewJob, defaults: GuildDefaults) -> tuple[bool, float]:
    """One reservation: (accepted, seconds it took). SQLite's busy timeout running out
    ("database is locked") is a refusal the member would see as an error: not accepted."""
    started = time.perf_counter()
    try:
        await store.reserve_request(
            job, cost=COST, role_ids=(), defaults=defaults, now=datetime.now(UTC)
        )
    except (QuotaExceeded, sqlite3.OperationalError):
        return False, time.perf_counter() - started
    return True, time.perf_counter() - started


@dataclass(frozen=True)
class Run:
    attempts: int
    accepted: int
    seconds: float
    latencies: list[float]
    cpu: float = 0.0
    """Processor seconds the calling processes spent while timed (the bot's side)."""
    busy: float = math.nan
    """The share of the whole machine busy while timed, whoever kept it busy."""
    server_cpu: float = math.nan
    """Processor seconds of the PostgreSQL server while timed (all its processes)."""


def open_at(address: str, *, connections: int = CONNECTIONS) -> AbstractAsyncContextManager[Store]:
    """The store at a SQLite file path or a PostgreSQL URL (a pool of ``connections``)."""
    if address.startswith("postgresql://"):
        return PostgresStore.open(address, min_size=connections, max_size=connections)
    return open_store(address)


async def warm(store: Store) -> None:
    """Reservations on every connection at once, untimed, on servers of their own."""
    await asyncio.gather(
        *(reserve(store, request(WARM_GUILD + n, 0), DEFAULTS) for n in range(CONNECTIONS))
    )


class Timer:
    """Wall and processor time of this process, the machine's, and a PostgreSQL server's
    (when ``postmaster`` names its process), from start to stop."""

    def __init__(self, postmaster: int | None = None) -> None:
        self._postmaster = postmaster
        self._server = None if postmaster is None else Server.now(postmaster)
        self._machine = Machine.now()
        self._cpu = time.process_time()
        self._started = time.perf_counter()

    def stop(self, results: Results) -> Run:
        """The run of ``results`` ((accepted, seconds) per call), timed from the start."""
        seconds = time.perf_counter() - self._started
        server = math.nan
        if self._postmaster is not None and self._server is not None:
            server = Server.now(self._postmaster).seconds - self._server.seconds
        return Run(
            len(results),
            sum(ok for ok, _ in results),
            seconds,
            [took for _, took in results],
            cpu=time.process_time() - self._cpu,
            busy=busy_between(self._machine, Machine.now()),
            server_cpu=server,
        )


async def timed(
    address: str,
    work: Work,
    *,
    postmaster: int | None = None,
    barriers: tuple[Barrier, Barrier, Barrier] | None = None,
) -> Run:
    """``work`` on a warm store at ``address``, timed. With ``barriers`` (start, finish,
    read): timed from when every process passed the start, and the store kept open after
    every one has finished until the server has been read (a connection closing meanwhile
    would take its processor time out of sight while the reading is taken)."""
    async with open_at(address) as store:
        await warm(store)
        if barriers is not None:
            await asyncio.to_thread(barriers[0].wait, BARRIER_TIMEOUT)
        timer = Timer(postmaster)
        run = timer.stop(await work(store))
        if barriers is not None:
            await asyncio.to_thread(barriers[1].wait, BARRIER_TIMEOUT)
            await asyncio.to_thread(barriers[2].wait, BARRIER_TIMEOUT)
        return run


def sequential(count: int) -> Work:
    """A single caller, one reservation after another."""

    async def work(store: Store) -> Results:
        return [
            await reserve(store, request(1 + index // JOBS_PER_GUILD, index), DEFAULTS)
            for index in range(count)
        ]

    return work


def race(guild_id: int, first: int, count: int) -> Work:
    """``count`` members at once, for the pool of ``guild_id``."""

    async def work(store: Store) -> Results:
        members = range(first, first + count)
        return list(
            await asyncio.gather(
                *(reserve(store, request(guild_id, m), RACE_DEFAULTS) for m in members)
            )
        )

    return work


def steady(first_guild: int, count: int) -> Work:
    """``CALLERS`` callers, each reserving one after another on a server of its own,
    ``count`` reservations in all."""

    async def caller(store: Store, guild_id: int) -> Results:
        return [
            await reserve(store, request(guild_id, member), DEFAULTS)
            for member in range(count // CALLERS)
        ]

    async def work(store: Store) -> Results:
        found = await asyncio.gather(*(caller(store, first_guild + c) for c in range(CALLERS)))
        return [result for results in found for result in results]

    return work


def _worker(
    address: str,
    make: Callable[..., Work],
    args: tuple[Any, ...],
    barriers: tuple[Barrier, Barrier, Barrier],
) -> Run:
    return asyncio.run(timed(address, make(*args), barriers=barriers))


def in_processes(
    address: str, works: list[tuple[Callable[..., Work], tuple[Any, ...]]], postmaster: int | None
) -> Run:
    """Each ``(make, args)`` of ``works`` in a process of its own, all started together: the
    wall time of the slowest, the processor time of all."""
    context = get_context("spawn")
    parties = len(works) + 1
    with (
        context.Manager() as manager,
        ProcessPoolExecutor(max_workers=len(works), mp_context=context) as pool,
    ):
        barriers = (
            manager.Barrier(parties),
            manager.Barrier(parties),
            manager.Barrier(parties),
        )
        futures = [pool.submit(_worker, address, make, args, barriers) for make, args in works]
        start, finish, read = barriers
        start.wait(BARRIER_TIMEOUT)
        machine = Machine.now()
        server = None if postmaster is None else Server.now(postmaster)
        finish.wait(BARRIER_TIMEOUT)
        busy = busy_between(machine, Machine.now())
        server_cpu = math.nan
        if postmaster is not None and server is not None:
            server_cpu = Server.now(postmaster).seconds - server.seconds
        read.wait(BARRIER_TIMEOUT)
        runs = [future.result() for future in futures]
    return Run(
        sum(r.attempts for r in runs),
        sum(r.accepted for r in runs),
        max(r.seconds for r in runs),
        [t for r in runs for t in r.latencies],
        cpu=sum(r.cpu for r in runs),
        busy=busy,
        server_cpu=server_cpu,
    )


async def pool_spent(address: str, guild_id: int) -> tuple[int, int]:
    """(credits held or used by the server, its open jobs), as the store reports them."""
    async with open_at(address, connections=1) as store:
        usage = await store.member_usage(
            guild_id, 1, role_ids=(), defaults=RACE_DEFAULTS, now=datetime.now(UTC)
        )
    return usage.server_used + usage.server_reserved, usage.server_active_jobs
