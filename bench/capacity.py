"""Capacity: one bot process carrying 1,000 concurrent jobs, with generation time compressed.

The real bot runs in its own process against the local Discord and RunComfy emulators (see
`bench.world`) and measures itself: event-loop lag (a 10 ms sampler task) and RSS. The jobs
arrive at 50 a second over 100 channels; each waits at RunComfy until the last one has
arrived, then queues 0-60 s and generates 30-90 s, all divided by the compression factor.
Every other duration the bot uses is divided by the same factor (poll interval, status edit
interval, job deadline), so the bot does in 1 s what it would do in `COMPRESSION` seconds:
its request rates are that many times the real ones, and Discord's per-channel edit limit
(5 edits per 5 s) is checked over windows of 5 s / the factor.

Then `bench.scale`: 1,000 jobs in flight per process over 1, 2 and 4 processes on PostgreSQL,
beside one process on SQLite, the same way.
"""

from __future__ import annotations

import asyncio
import math
import random
import sqlite3
from collections import defaultdict
from dataclasses import dataclass

from bench import scale
from bench.common import MIB, Check, Report, Table, ms, percentile
from bench.world import World, open_world, until
from bot.config import QuotaConfig
from sandbox.world import SandboxSettings

TITLE = "Capacity"
DEFAULT_RUNS = 1

QUEUE_RANGE = (0.0, 60.0)
RUN_RANGE = (30.0, 90.0)
DISCORD_EDITS_PER_WINDOW = 5
DISCORD_EDIT_WINDOW = 5.0


@dataclass(frozen=True)
class Shape:
    jobs: int
    rate: float  # arrivals per second
    channels: int
    compression: float


FULL = Shape(jobs=1000, rate=50.0, channels=100, compression=4.0)
QUICK = Shape(jobs=40, rate=30.0, channels=10, compression=30.0)


def peak_in_window(times: list[float], window: float) -> int:
    """The most events inside any `window`-second stretch."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, at in enumerate(ordered):
        while at - ordered[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best


def job_states(path: str) -> dict[str, int]:
    """How many of the bot's jobs ended in each state (read straight from its SQLite file)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall()
    return {str(state): int(count) for state, count in rows}


def _lag_row(name: str, samples: list[float]) -> list[str | int | float | None]:
    return [
        name,
        len(samples),
        ms(percentile(samples, 50)),
        ms(percentile(samples, 99)),
        ms(max(samples)) if samples else math.nan,
    ]


async def _drive(world: World, shape: Shape, rng: random.Random) -> tuple[float, float]:
    """Start every job; return (arrival seconds, seconds until the last video was posted)."""
    runcomfy = world.sandbox.runcomfy
    loop = asyncio.get_running_loop()
    ramp = shape.jobs / shape.rate
    started = loop.time()
    for index in range(shape.jobs):
        offset = index / shape.rate
        queue = (ramp - offset) + rng.uniform(*QUEUE_RANGE) / shape.compression
        runcomfy.plan_next_job(
            queue_seconds=queue, run_seconds=rng.uniform(*RUN_RANGE) / shape.compression
        )
        await world.animate(index)
        await asyncio.sleep(max(0.0, started + offset + 1 / shape.rate - loop.time()))
    arrived = loop.time() - started
    await world.bot.mark("in flight")
    longest = ramp + (QUEUE_RANGE[1] + RUN_RANGE[1]) / shape.compression
    await until(lambda: world.videos() >= shape.jobs, timeout=longest + 120, every=0.25)
    return arrived, loop.time() - started


async def _measure(shape: Shape, seed: int) -> Report:
    c = shape.compression
    settings = SandboxSettings(
        port=0,
        video_size=(32, 32),
        fps=4,
        poll_interval=5.0 / c,
        status_edit_interval=5.0 / c,
        job_deadline=1800.0 / c,
        quota=QuotaConfig(
            member_credits=1_000_000,
            server_credits=1_000_000,
            member_concurrent_jobs=1000,
            server_concurrent_jobs=1000,
        ),
    )
    async with open_world(
        settings, channels=shape.channels, max_concurrent_jobs=shape.jobs
    ) as world:
        await world.bot.mark("ramp")
        arrived, finished = await _drive(world, shape, random.Random(seed))
        stats = await world.bot.stop()
        videos = world.videos()
        states = job_states(str(world.sandbox.config.database.path))
        edits = world.status_edits()
        polls = sum(
            1
            for r in world.sandbox.runcomfy.requests
            if r.method == "GET" and r.path.endswith("/result")
        )
        unacknowledged = sum(
            1 for r in world.discord.service.interactions.values() if r.acknowledged_at is None
        )
    if stats.error:
        raise RuntimeError(stats.error)

    lag_all = stats.lag.get("ramp", []) + stats.lag.get("in flight", [])
    baseline = stats.rss_at.get("ramp", 0)
    per_channel: dict[int, list[float]] = defaultdict(list)
    for channel, at in edits:
        per_channel[channel].append(at)
    window = DISCORD_EDIT_WINDOW / c
    peaks = [peak_in_window(t, window) for t in per_channel.values()]
    channel_peak = max(peaks, default=0)
    over = sum(1 for p in peaks if p > DISCORD_EDITS_PER_WINDOW)
    edit_rate = len(edits) / finished
    delivered = states.get("delivered", 0)
    lost = shape.jobs - min(videos, delivered)

    tables = [
        Table(
            "Event-loop lag of the bot process (10 ms sampler)",
            ["phase", "samples", "p50 (ms)", "p99 (ms)", "max (ms)"],
            [
                _lag_row(
                    f"arrivals ({shape.jobs:,} at {shape.rate:g}/s)", stats.lag.get("ramp", [])
                ),
                _lag_row(
                    f"{shape.jobs:,} in flight until all delivered", stats.lag.get("in flight", [])
                ),
                _lag_row("whole run", lag_all),
            ],
        ),
        Table(
            "Memory, throughput and delivery",
            ["measure", "value"],
            [
                ["jobs", shape.jobs],
                ["channels", shape.channels],
                ["time compression", c],
                ["RSS when ready, before any job (MiB)", baseline / MIB],
                ["peak RSS (MiB)", stats.peak_rss / MIB],
                [
                    "peak RSS - ready RSS, per job (KiB)",
                    (stats.peak_rss - baseline) / 1024 / shape.jobs,
                ],
                ["all jobs arrived after (s)", arrived],
                ["last video posted after (s)", finished],
                ["provider polls per second (compressed)", polls / finished],
                ["status edits per second (compressed)", edit_rate],
                ["status edits per second (real-time equivalent)", edit_rate / c],
                ["status edits per job", len(edits) / shape.jobs],
                ["jobs per channel", shape.jobs / shape.channels],
                [
                    f"peak edits in one channel per {DISCORD_EDIT_WINDOW:g} s (real-time equiv.)",
                    channel_peak,
                ],
                [
                    f"channels over {DISCORD_EDITS_PER_WINDOW} edits per {DISCORD_EDIT_WINDOW:g} s",
                    over,
                ],
                ["jobs delivered (store)", delivered],
                ["videos posted (Discord)", videos],
                [
                    "jobs in another end state",
                    sum(n for s, n in states.items() if s != "delivered"),
                ],
                ["interactions never acknowledged", unacknowledged],
            ],
        ),
    ]
    checks = [
        Check("event-loop lag p99, whole run", ms(percentile(lag_all, 99)), "<", 50.0, "ms"),
        Check("peak RSS", stats.peak_rss / MIB, "<", 250.0, "MiB"),
        Check("lost jobs", float(lost), "==", 0.0),
        Check(
            f"peak status edits in one channel per {DISCORD_EDIT_WINDOW:g} s (real-time equiv.)",
            float(channel_peak),
            "<=",
            float(DISCORD_EDITS_PER_WINDOW),
        ),
    ]
    return Report(tables, checks)


def measure(quick: bool, seed: int) -> Report:
    report = asyncio.run(_measure(QUICK if quick else FULL, seed))
    # Then the same machine carries jobs across several processes (bench.scale).
    tables, checks = scale.measure(quick, seed)
    return Report(report.tables + tables, report.checks + checks, report.notes)
