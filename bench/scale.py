"""Capacity across processes: 1,000 jobs in flight per bot process, over 1, 2 and 4 processes
on one PostgreSQL database (beside one process on SQLite, the same way, in the same run).

Each bot process is the real bot (`bot.app.run_bot`) in its own interpreter, measuring its own
event-loop lag and RSS (`bench.botproc`), with ``shard_ids = []``: it connects no gateway and
runs jobs over REST. The jobs are written to the database as accepted and held by nobody, as if
the processes holding the gateway had accepted them and handed them on, at 50 a second per
process over 100 channels per process (10 jobs a channel, as in the one-process run, so
Discord's per-channel limits weigh the same at every count); every process sweeps for such
jobs and takes them (up to 100 a sweep), so the processes share the load through the leases
alone. At RunComfy each job waits
until the last one has arrived, then queues 0-60 s and generates 30-90 s, all divided by the
compression factor (the bot's poll and status intervals and its job deadline with them); the
provider's cap is above the number of jobs, so every job is at the provider at once at the
peak.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import random
import sqlite3
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bench.botproc import BotProcess, BotStats
from bench.common import MIB, Check, Report, Table, ms, percentile
from bench.world import frame_png
from bot.config import Config, DatabaseConfig, JobsConfig, QuotaConfig
from bot.models import GuildDefaults, NewJob
from bot.store import Store, open_database
from sandbox.discord.snowflake import SnowflakeGenerator
from sandbox.discord.state import TEXT_CHANNEL, Channel
from sandbox.world import Sandbox, SandboxSettings
from tests.harness.postgres import PostgresMissing, running_postgres

TITLE = "Capacity across processes"
DEFAULT_RUNS = 1

QUEUE_RANGE = (0.0, 60.0)
RUN_RANGE = (30.0, 90.0)
RATE_PER_PROCESS = 50.0
CHANNELS_PER_PROCESS = 100
_CHANNEL_IDS = SnowflakeGenerator(worker_id=28)
GUILDS = 8
"""The jobs are spread over this many servers: a server holds at most 1,000 open jobs."""
DEFAULTS = GuildDefaults(
    server_credits=1_000_000,
    member_credits=1_000_000,
    member_concurrent=1000,
    server_concurrent=1000,
)


@dataclass(frozen=True)
class Shape:
    per_process: int
    counts: tuple[int, ...]
    compression: float


FULL = Shape(per_process=1000, counts=(1, 2, 4), compression=4.0)
QUICK = Shape(per_process=10, counts=(1, 2), compression=30.0)


@dataclass(frozen=True)
class Outcome:
    """One run: N processes on one store."""

    store: str
    processes: int
    jobs: int
    delivered: int
    videos: int
    refunded: int
    """Jobs that ended without a video (failed, timed out): the member's credits released."""
    still_open: int
    """Jobs neither delivered nor ended when the run stopped waiting: lost."""
    reasons: dict[str, int]
    """Why the refunded jobs ended, as the member was told."""
    at_once: int
    finished: float
    stats: list[BotStats]
    most_held: list[int]


def _channels(sandbox: Sandbox, count: int) -> list[int]:
    emu = sandbox.discord
    ids = [emu.channel_id, emu.other_channel_id]
    for index in range(count - len(ids)):
        channel = Channel(
            _CHANNEL_IDS.next(), TEXT_CHANNEL, f"scale-{index}", emu.guild_id, position=index + 2
        )
        emu.world.channels[channel.id] = channel
        ids.append(channel.id)
    return ids


def most_at_once(sandbox: Sandbox) -> int:
    """The most jobs RunComfy had at once, from when each arrived and finished there."""
    edges = []
    for job in sandbox.runcomfy.jobs.values():
        edges.append((job.created_at.timestamp(), 1))
        if job.finished_at is not None:
            edges.append((job.finished_at.timestamp(), -1))
    most = current = 0
    for _, step in sorted(edges):
        current += step
        most = max(most, current)
    return most


async def run(database: DatabaseConfig, processes: int, shape: Shape, seed: int) -> Outcome:
    """``processes`` bot processes on ``database`` carrying ``per_process`` jobs each."""
    c = shape.compression
    rng = random.Random(seed)
    jobs = processes * shape.per_process
    settings = SandboxSettings(
        port=0,
        video_size=(32, 32),
        fps=4,
        poll_interval=5.0 / c,
        status_edit_interval=5.0 / c,
        job_deadline=1800.0 / c,
    )
    async with Sandbox(settings) as sandbox, open_database(database) as store:
        channels = _channels(sandbox, CHANNELS_PER_PROCESS * processes)
        members = [sandbox.discord.requester_id, sandbox.discord.member_id]
        image = sandbox.runcomfy.add_asset("frame.png", frame_png())
        base = sandbox.config
        config: Config = dataclasses.replace(
            base,
            # The processes share one bot token, so they split its request budget (README:
            # Running several processes).
            discord=dataclasses.replace(
                base.discord,
                shard_ids=(),
                requests_per_second=max(1, base.discord.requests_per_second // processes),
            ),
            runcomfy=dataclasses.replace(base.runcomfy, max_concurrent_jobs=jobs + 1),
            database=database,
            quota=QuotaConfig(
                member_credits=1_000_000,
                server_credits=1_000_000,
                member_concurrent_jobs=1000,
                server_concurrent_jobs=1000,
            ),
            jobs=JobsConfig(lease_seconds=30.0 / c, shutdown_grace=1.0),
        )
        bots = [BotProcess(config, sandbox.secrets) for _ in range(processes)]
        for bot in bots:
            bot.start()
        pids = [bot.pid for bot in bots]
        most_held = [0] * processes
        async with _sampling(database, pids, most_held):
            for bot in bots:
                await bot.mark("ramp")
            rate = RATE_PER_PROCESS * processes
            ramp = jobs / rate
            loop = asyncio.get_running_loop()
            started = loop.time()
            for index in range(jobs):
                offset = index / rate
                sandbox.runcomfy.plan_next_job(
                    queue_seconds=(ramp - offset) + rng.uniform(*QUEUE_RANGE) / c,
                    run_seconds=rng.uniform(*RUN_RANGE) / c,
                )
                await store.reserve_request(
                    NewJob(
                        1 + index % GUILDS,
                        channels[index % len(channels)],
                        members[index % len(members)],
                        "waves rolling onto a beach",
                        image,
                        None,
                        "480p",
                        5,
                    ),
                    cost=1,
                    role_ids=(),
                    defaults=DEFAULTS,
                    now=datetime.now(UTC),
                )
                await asyncio.sleep(max(0.0, started + offset + 1 / rate - loop.time()))
            for bot in bots:
                await bot.mark("in flight")
            # Every job ends by its deadline (plus a sweep); wait that long at most.
            longest = ramp + 1800.0 / c + 60.0
            ends = loop.time() + longest
            while loop.time() < ends and await _settled(store) < jobs:  # noqa: ASYNC110
                await asyncio.sleep(0.25)
            finished = loop.time() - started
        stats = [await bot.stop() for bot in bots]
        rows = await store.usage_rows()
        delivered = sum(r.delivered for r in rows)
        return Outcome(
            store="PostgreSQL" if database.url else "SQLite",
            processes=processes,
            jobs=jobs,
            delivered=delivered,
            videos=_videos(sandbox),
            refunded=sum(r.failed + r.timed_out + r.cancelled for r in rows),
            still_open=sum(r.in_progress for r in rows),
            reasons=await _reasons(database),
            at_once=most_at_once(sandbox),
            finished=finished,
            stats=stats,
            most_held=most_held,
        )


async def _settled(store: Store) -> int:
    """Jobs that ended, one way or another."""
    return sum(r.delivered + r.failed + r.timed_out + r.cancelled for r in await store.usage_rows())


_REASONS = "SELECT error, COUNT(*) FROM jobs WHERE state <> 'delivered' GROUP BY error"


async def _reasons(database: DatabaseConfig) -> dict[str, int]:
    """Why jobs ended without a video, read past the store (a figure, not a product query)."""
    return await _read(database, _REASONS)


def _videos(sandbox: Sandbox) -> int:
    return sum(
        1
        for message in sandbox.discord.service.messages.values()
        if any(a.filename.endswith(".mp4") for a in message.attachments)
    )


_HELD = (
    "SELECT owner, COUNT(*) FROM jobs WHERE owner IS NOT NULL "
    "AND state NOT IN ('delivered', 'failed', 'cancelled', 'timed_out') GROUP BY owner"
)


async def _held(database: DatabaseConfig) -> dict[str, int]:
    """Open jobs per owner right now, read past the store (a figure, not a product query)."""
    return await _read(database, _HELD)


async def _read(database: DatabaseConfig, sql: str) -> dict[str, int]:
    """A two-column count query on the run's database: {first column: count}."""
    if database.url:
        conn = await asyncpg.connect(database.url)
        try:
            return {str(r[0]): int(r[1]) for r in await conn.fetch(sql)}
        finally:
            await conn.close()

    def read() -> dict[str, int]:
        with sqlite3.connect(f"file:{database.path}?mode=ro", uri=True) as db:
            found = {str(o): int(n) for o, n in db.execute(sql).fetchall()}
        db.close()
        return found

    return await asyncio.to_thread(read)


@contextlib.asynccontextmanager
async def _sampling(
    database: DatabaseConfig, pids: list[int], most: list[int]
) -> AsyncIterator[None]:
    """Keep, for each process, the most open jobs it held at once (read every half second;
    an owner's identity is ``host:pid:token``)."""

    async def sample() -> None:
        while True:
            for owner, count in (await _held(database)).items():
                parts = owner.split(":")
                pid = int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else -1
                if pid in pids:
                    index = pids.index(pid)
                    most[index] = max(most[index], count)
            await asyncio.sleep(0.5)

    task = asyncio.create_task(sample())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _row(outcome: Outcome) -> list[str | int | float | None]:
    lags = [
        s
        for stats in outcome.stats
        for s in stats.lag.get("ramp", []) + stats.lag.get("in flight", [])
    ]
    worst_p99 = max(
        (
            ms(percentile(st.lag.get("ramp", []) + st.lag.get("in flight", []), 99))
            for st in outcome.stats
        ),
        default=math.nan,
    )
    return [
        f"{outcome.store}, {outcome.processes} process{'es' if outcome.processes > 1 else ''}",
        outcome.jobs,
        outcome.at_once,
        " / ".join(f"{n:,}" for n in outcome.most_held),
        ms(percentile(lags, 99)),
        worst_p99,
        " / ".join(f"{st.peak_rss / MIB:.0f}" for st in outcome.stats),
        outcome.delivered,
        outcome.delivered - outcome.videos,
        outcome.refunded,
        outcome.still_open,
        outcome.finished,
    ]


async def _all(shape: Shape, seed: int, tmp: Path) -> tuple[list[Outcome], str | None]:
    outcomes = [
        await run(DatabaseConfig(path=tmp / "scale.sqlite3"), 1, shape, seed),
    ]
    try:
        with running_postgres(durable=True) as server:
            for count in shape.counts:
                with server.database() as name:
                    database = DatabaseConfig(url=server.url(name))
                    outcomes.append(await run(database, count, shape, seed))
    except PostgresMissing as missing:
        return outcomes, str(missing)
    return outcomes, None


def measure(quick: bool, seed: int) -> Report:
    """The tables and the targets of the runs across processes."""
    shape = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="bench-scale-", dir=Path.home()) as tmp:
        outcomes, missing = asyncio.run(_all(shape, seed, Path(tmp)))
    note = (
        f"{shape.per_process:,} jobs per process, written to the database at "
        f"{RATE_PER_PROCESS:g}/s per process over {CHANNELS_PER_PROCESS} channels per process, "
        "and taken by the processes' sweeps; time compressed "
        f"{shape.compression:g}x. 'At once' is the most jobs RunComfy had at the same moment; "
        "'held' the most open jobs each process held at once (read every 0.5 s); lag over the "
        "arrivals and until the last video, p99 of all processes' samples and of the worst "
        "process; RSS is each process's peak."
    )
    if missing:
        note += f" PostgreSQL was not measured: {missing}."
    table = Table(
        "Jobs in flight across bot processes (jobs-only processes, shard_ids = [])",
        [
            "store, processes",
            "jobs",
            "at once",
            "held per process",
            "lag p99 (ms)",
            "worst process lag p99 (ms)",
            "peak RSS per process (MiB)",
            "delivered",
            "of which as a link",
            "ended, refunded",
            "lost (open at the end)",
            "all settled after (s)",
        ],
        [_row(o) for o in outcomes],
        note,
    )
    checks = []
    for o in outcomes:
        name = f"{o.store}, {o.processes} process{'es' if o.processes > 1 else ''}"
        checks.append(Check(f"{name}: lost jobs", float(o.still_open), "==", 0.0))
        checks.append(Check(f"{name}: jobs delivered", float(o.delivered), "==", float(o.jobs)))
        for index, stats in enumerate(o.stats):
            lag = stats.lag.get("ramp", []) + stats.lag.get("in flight", [])
            checks.append(
                Check(
                    f"{name}: process {index + 1} lag p99", ms(percentile(lag, 99)), "<", 50.0, "ms"
                )
            )
            checks.append(
                Check(
                    f"{name}: process {index + 1} peak RSS", stats.peak_rss / MIB, "<", 250.0, "MiB"
                )
            )
    reasons = Table(
        "Why jobs ended without a video (as their members were told)",
        ["store, processes", "jobs", "reason"],
        [
            [_name(o), n, reason]
            for o in outcomes
            for reason, n in sorted(o.reasons.items(), key=lambda item: -item[1])
        ],
    )
    return Report([table, reasons], checks)


def _name(o: Outcome) -> str:
    return f"{o.store}, {o.processes} process{'es' if o.processes > 1 else ''}"
