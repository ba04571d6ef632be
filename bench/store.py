"""Store: credit reservations per second on one SQLite file and on one PostgreSQL database,
alone and racing for one pool.

Every reservation is `Store.reserve_request` — the call /animate makes: the server's
settings, the gates, the member's cap, the pool and the concurrency caps, then the write, in
one transaction. SQLite: `BEGIN IMMEDIATE`, committed with `synchronous = FULL` (an fsync per
commit), the file in a temporary folder on the machine's disk. PostgreSQL: a server of its own
started for the run (Debian's binaries, as the tests do, with PostgreSQL's default
durability: an fsync per commit), over its Unix socket; the transaction holds the server's
advisory lock. Without PostgreSQL's binaries that table is left out.

- one after another: a single caller;
- 200 racing in one process: 200 tasks sharing the bot's one connection (SQLite) or its pool
  of 10 connections (PostgreSQL);
- 200 racing from 4 processes: 4 processes x 50 tasks, each process with its own connection
  (or pool), racing for the file's write lock (or the server's advisory lock);
- 1, 2 and 4 processes, each with 10 callers on servers of their own (no shared pool): how
  the store's throughput grows with bot processes, as it must for several processes to help.

In the races the server's pool holds fewer credits than asked for (1 credit each), so some
must be refused: exactly `pool` reservations may succeed and the pool must never be overspent.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path

from bench.common import Check, Report, Table, ms, percentile
from bot.errors import QuotaExceeded
from bot.models import GuildDefaults, NewJob
from bot.store import Store, open_store
from bot.store.postgres import PostgresStore
from tests.harness.postgres import PostgresMissing, running_postgres

TITLE = "Store"
DEFAULT_RUNS = 3

RACERS = 200
PROCESSES = 4
POOL = 150
COST = 1
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
SCALE = (1, 2, 4)
CALLERS = 10  # per process, each on a server of its own


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
    """One reservation: (accepted, seconds it took)."""
    started = time.perf_counter()
    try:
        await store.reserve_request(
            job, cost=COST, role_ids=(), defaults=defaults, now=datetime.now(UTC)
        )
    except QuotaExceeded:
        return False, time.perf_counter() - started
    return True, time.perf_counter() - started


@dataclass(frozen=True)
class Run:
    attempts: int
    accepted: int
    seconds: float
    latencies: list[float]


def open_at(address: str) -> AbstractAsyncContextManager[Store]:
    """The store at a SQLite file path or a PostgreSQL URL."""
    if address.startswith("postgresql://"):
        return PostgresStore.open(address)
    return open_store(address)


async def sequential(address: str, count: int) -> Run:
    async with open_at(address) as store:
        latencies = []
        accepted = 0
        started = time.perf_counter()
        for index in range(count):
            ok, took = await reserve(store, request(1 + index // JOBS_PER_GUILD, index), DEFAULTS)
            accepted += ok
            latencies.append(took)
        return Run(count, accepted, time.perf_counter() - started, latencies)


async def race_in_process(address: str, guild_id: int, members: range, start_at: float) -> Run:
    async with open_at(address) as store:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        started = time.perf_counter()
        results = await asyncio.gather(
            *(reserve(store, request(guild_id, member), RACE_DEFAULTS) for member in members)
        )
        seconds = time.perf_counter() - started
    return Run(len(results), sum(ok for ok, _ in results), seconds, [t for _, t in results])


def _race_worker(address: str, guild_id: int, first: int, count: int, start_at: float) -> Run:
    return asyncio.run(race_in_process(address, guild_id, range(first, first + count), start_at))


def race_processes(address: str, guild_id: int) -> Run:
    per = RACERS // PROCESSES
    with ProcessPoolExecutor(max_workers=PROCESSES, mp_context=get_context("spawn")) as pool:
        # Warm the workers (interpreter start, imports) before the starting gun.
        list(pool.map(_noop, range(PROCESSES)))
        start_at = time.time() + 1.0
        futures = [
            pool.submit(_race_worker, address, guild_id, 1 + i * per, per, start_at)
            for i in range(PROCESSES)
        ]
        runs = [f.result() for f in futures]
    return Run(
        sum(r.attempts for r in runs),
        sum(r.accepted for r in runs),
        max(r.seconds for r in runs),
        [t for r in runs for t in r.latencies],
    )


def _noop(_index: int) -> None:
    return None


async def steady(address: str, first_guild: int, count: int, start_at: float) -> Run:
    """One process's steady traffic: ``CALLERS`` callers, each reserving one after another on
    a server of its own, ``count`` reservations in all."""
    async with open_at(address) as store:
        await asyncio.sleep(max(0.0, start_at - time.time()))

        async def caller(guild_id: int) -> list[tuple[bool, float]]:
            done = []
            for member in range(count // CALLERS):
                started = time.perf_counter()
                try:
                    done.append(await reserve(store, request(guild_id, member), DEFAULTS))
                except sqlite3.OperationalError:
                    # SQLite's busy timeout ran out ("database is locked"): a refusal the
                    # member would see as an error.
                    done.append((False, time.perf_counter() - started))
            return done

        started = time.perf_counter()
        results = await asyncio.gather(*(caller(first_guild + c) for c in range(CALLERS)))
        seconds = time.perf_counter() - started
    done = [r for caller_results in results for r in caller_results]
    return Run(len(done), sum(ok for ok, _ in done), seconds, [t for _, t in done])


def _steady_worker(address: str, first_guild: int, count: int, start_at: float) -> Run:
    return asyncio.run(steady(address, first_guild, count, start_at))


def scale(address: str, processes: int, count: int) -> Run:
    """``processes`` processes of steady traffic at once; wall time of the slowest."""
    with ProcessPoolExecutor(max_workers=processes, mp_context=get_context("spawn")) as pool:
        list(pool.map(_noop, range(processes)))
        start_at = time.time() + 1.0
        futures = [
            pool.submit(_steady_worker, address, 10_000_000 * processes + 1000 * i, count, start_at)
            for i in range(processes)
        ]
        runs = [f.result() for f in futures]
    return Run(
        sum(r.attempts for r in runs),
        sum(r.accepted for r in runs),
        max(r.seconds for r in runs),
        [t for r in runs for t in r.latencies],
    )


async def pool_spent(address: str, guild_id: int) -> tuple[int, int]:
    """(credits held or used by the server, its open jobs), as the store reports them."""
    async with open_at(address) as store:
        usage = await store.member_usage(
            guild_id, 1, role_ids=(), defaults=RACE_DEFAULTS, now=datetime.now(UTC)
        )
    return usage.server_used + usage.server_reserved, usage.server_active_jobs


def _row(name: str, run: Run) -> list[str | int | float | None]:
    return [
        name,
        run.attempts,
        run.accepted,
        run.attempts / run.seconds,
        ms(percentile(run.latencies, 50)),
        ms(percentile(run.latencies, 99)),
    ]


@dataclass(frozen=True)
class Runs:
    alone: Run
    together: Run
    apart: Run
    spent_one: tuple[int, int]
    spent_many: tuple[int, int]
    scaled: dict[int, Run]


def run_all(address: str, count: int) -> Runs:
    """The ways of calling, on the store at ``address``."""
    alone = asyncio.run(sequential(address, count))
    together = asyncio.run(race_in_process(address, 900_001, range(1, RACERS + 1), 0.0))
    spent_one = asyncio.run(pool_spent(address, 900_001))
    apart = race_processes(address, 900_002)
    spent_many = asyncio.run(pool_spent(address, 900_002))
    per_process = max(CALLERS, count // 2)
    scaled = {n: scale(address, n, per_process) for n in SCALE}
    return Runs(alone, together, apart, spent_one, spent_many, scaled)


def _table(title: str, runs: Runs, connections: str, note: str) -> Table:
    return Table(
        title,
        ["callers", "attempts", "accepted", "reservations/s", "p50 (ms)", "p99 (ms)"],
        [
            _row("one after another", runs.alone),
            _row(f"{RACERS} racing in one process ({connections})", runs.together),
            _row(f"{RACERS} racing from {PROCESSES} processes", runs.apart),
            *(
                _row(
                    f"{n} process{'es' if n > 1 else ''} x {CALLERS} callers, servers of their own",
                    run,
                )
                for n, run in runs.scaled.items()
            ),
        ],
        f"In the races the pool holds {POOL} credits and each of the {RACERS} racers asks for "
        f"{COST}; reservations/s counts refusals too (they run the same transaction). "
        f"Latency is per call, waiting for the lock included. In the last rows each caller "
        f"reserves one after another on a server of its own; every call should be accepted, "
        f"and one that is not failed (SQLite: its busy timeout ran out, 'database is "
        f"locked')." + note,
    )


def _checks(name: str, runs: Runs) -> list[Check]:
    return [
        Check(
            f"{name}: pool credits spent, one process", float(runs.spent_one[0]), "<=", float(POOL)
        ),
        Check(
            f"{name}: pool credits spent, 4 processes", float(runs.spent_many[0]), "<=", float(POOL)
        ),
        Check(
            f"{name}: reservations accepted, one process",
            float(runs.together.accepted),
            "==",
            float(POOL),
        ),
        Check(
            f"{name}: reservations accepted, 4 processes",
            float(runs.apart.accepted),
            "==",
            float(POOL),
        ),
        Check(
            f"{name}: open jobs match accepted reservations, 4 processes",
            float(runs.spent_many[1]),
            "==",
            float(runs.apart.accepted),
        ),
    ]


def measure(quick: bool, seed: int) -> Report:
    count = 200 if quick else 2000
    with tempfile.TemporaryDirectory(prefix="bench-store-", dir=Path.home()) as tmp:
        sqlite = run_all(str(Path(tmp) / "store.sqlite3"), count)
    tables = [
        _table(
            "Store.reserve_request on one SQLite file (WAL, synchronous=FULL)",
            sqlite,
            "one connection",
            "",
        )
    ]
    checks = _checks("SQLite", sqlite)
    try:
        with running_postgres(durable=True) as server, server.database() as name:
            postgres = run_all(server.url(name), count)
    except PostgresMissing as missing:
        tables[0].note += f" PostgreSQL was not measured: {missing}."
        return Report(tables, checks)
    tables.append(
        _table(
            "Store.reserve_request on one PostgreSQL database (Unix socket, fsync per commit)",
            postgres,
            "a pool of 10 connections",
            " Each process has its own pool; a server's reservations queue on its advisory lock.",
        )
    )
    rate = {n: run.attempts / run.seconds for n, run in postgres.scaled.items()}
    scaling = [
        Check(
            "PostgreSQL vs SQLite, one process: SQLite's reservations/s over PostgreSQL's",
            (sqlite.alone.attempts / sqlite.alone.seconds)
            / (postgres.alone.attempts / postgres.alone.seconds),
            "<=",
            2.0,
            "x",
        ),
        Check("PostgreSQL: reservations/s, 2 processes over 1", rate[2] / rate[1], ">", 1.0, "x"),
        Check("PostgreSQL: reservations/s, 4 processes over 2", rate[4] / rate[2], ">", 1.0, "x"),
    ]
    return Report(tables, checks + _checks("PostgreSQL", postgres) + scaling)
