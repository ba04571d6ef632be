"""Store: credit reservations per second on one SQLite file and on one PostgreSQL database,
alone and racing for one pool, and where the processor time goes.

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

Every run is timed on a warm store (see `bench.store_runs`). Beside the rates: the processor
time per call of the bot's processes and of PostgreSQL's server, how busy the whole machine
was, and the rate that processor time would allow on all the machine's cores: on a machine
where the bot and the database share the cores, throughput stops growing with processes once
the cores are full.

In the races the server's pool holds fewer credits than asked for (1 credit each), so some
must be refused: exactly `pool` reservations may succeed and the pool must never be overspent.
"""

from __future__ import annotations

import asyncio
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.common import Check, Report, Table, ms, percentile
from bench.cpu import postmaster_of
from bench.store_runs import (
    CALLERS,
    COST,
    POOL,
    PROCESSES,
    RACERS,
    Run,
    in_processes,
    pool_spent,
    race,
    sequential,
    steady,
    timed,
)
from tests.harness.postgres import PostgresMissing, running_postgres

TITLE = "Store"
DEFAULT_RUNS = 3

SCALE = (1, 2, 4)
_SETTINGS = (
    "fsync", "synchronous_commit", "full_page_writes", "wal_sync_method", "commit_delay",
    "shared_buffers", "default_transaction_isolation",
)  # fmt: skip


def _per_call(seconds: float, run: Run) -> float | None:
    return None if math.isnan(seconds) else ms(seconds / run.attempts)


def _row(name: str, run: Run) -> list[str | int | float | None]:
    spent = run.cpu + (0.0 if math.isnan(run.server_cpu) else run.server_cpu)
    return [
        name,
        run.attempts,
        run.accepted,
        run.attempts / run.seconds,
        ms(percentile(run.latencies, 50)),
        ms(percentile(run.latencies, 99)),
        _per_call(run.cpu, run),
        _per_call(run.server_cpu, run),
        run.busy * 100,
        (os.cpu_count() or 1) * run.attempts / spent if spent > 0 else math.nan,
    ]


@dataclass(frozen=True)
class Runs:
    alone: Run
    together: Run
    apart: Run
    spent_one: tuple[int, int]
    spent_many: tuple[int, int]
    scaled: dict[int, Run]


def one_after_another(address: str, count: int, postmaster: int | None = None) -> Run:
    """A single caller on the store at ``address`` (a PostgreSQL server's processor time
    read too when ``postmaster`` names its process)."""
    return asyncio.run(timed(address, sequential(count), postmaster=postmaster))


def run_all(address: str, count: int, alone: Run, postmaster: int | None = None) -> Runs:
    """The other ways of calling, on the store at ``address``, after ``alone``."""
    together = asyncio.run(timed(address, race(900_001, 1, RACERS), postmaster=postmaster))
    spent_one = asyncio.run(pool_spent(address, 900_001))
    per = RACERS // PROCESSES
    apart = in_processes(
        address, [(race, (900_002, 1 + i * per, per)) for i in range(PROCESSES)], postmaster
    )
    spent_many = asyncio.run(pool_spent(address, 900_002))
    per_process = max(CALLERS, count // 2)
    scaled = {
        n: in_processes(
            address,
            [(steady, (10_000_000 * n + 1000 * i, per_process)) for i in range(n)],
            postmaster,
        )
        for n in SCALE
    }
    return Runs(alone, together, apart, spent_one, spent_many, scaled)


def _table(title: str, runs: Runs, connections: str, note: str) -> Table:
    return Table(
        title,
        [
            "callers",
            "attempts",
            "accepted",
            "reservations/s",
            "p50 (ms)",
            "p99 (ms)",
            "bot CPU (ms/call)",
            "server CPU (ms/call)",
            "machine busy (%)",
            "the cores allow (/s)",
        ],
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
        f"locked'). Processor time per call, while timed: the bot's processes (SQLite's work "
        f"included: it runs inside them), and PostgreSQL's server, all its processes. "
        f"Machine busy: the share of all {os.cpu_count()} cores busy while timed, whoever "
        f"kept them busy. The cores allow: the calls per second that processor time per call "
        f"would fill all the cores with, on a machine doing nothing else." + note,
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


async def server_settings(url: str) -> str:
    """The server settings a reservation's speed and durability depend on."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT name, current_setting(name) FROM unnest($1::text[]) name", _SETTINGS
        )
    finally:
        await conn.close()
    return ", ".join(f"{name} = {value}" for name, value in rows)


@contextmanager
def _postgres() -> Iterator[tuple[str, int] | str]:
    """A durable PostgreSQL server of the run's own: (a fresh database's URL, the server's
    process id); or why there is none."""
    try:
        with running_postgres(durable=True) as server, server.database() as name:
            yield server.url(name), postmaster_of(server.root / "data")
    except PostgresMissing as missing:
        yield str(missing)


def measure(quick: bool, seed: int) -> Report:
    count = 200 if quick else 2000
    loads = ", ".join(f"{load:.2f}" for load in os.getloadavg())
    notes = [f"Load average (1, 5, 15 min) at the start of run {seed + 1}: {loads}."]
    with (
        tempfile.TemporaryDirectory(prefix="bench-store-", dir=Path.home()) as tmp,
        _postgres() as found,
    ):
        path = str(Path(tmp) / "store.sqlite3")
        # One after another on both stores first, back to back: the two figures compared.
        sqlite_alone = one_after_another(path, count)
        postgres_alone = None
        if isinstance(found, tuple):
            postgres_alone = one_after_another(found[0], count, found[1])
        sqlite = run_all(path, count, sqlite_alone)
        if isinstance(found, tuple) and postgres_alone is not None:
            postgres = run_all(found[0], count, postgres_alone, found[1])
            notes.append(f"PostgreSQL server: {asyncio.run(server_settings(found[0]))}.")
    tables = [
        _table(
            "Store.reserve_request on one SQLite file (WAL, synchronous=FULL)",
            sqlite,
            "one connection",
            "",
        )
    ]
    checks = _checks("SQLite", sqlite)
    if not isinstance(found, tuple):
        tables[0].note += f" PostgreSQL was not measured: {found}."
        return Report(tables, checks, notes)
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
    return Report(tables, checks + _checks("PostgreSQL", postgres) + scaling, notes)
