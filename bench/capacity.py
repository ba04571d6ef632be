"""Capacity: one bot process carrying 1,000 concurrent jobs on a Discord that enforces its limits.

The real bot runs in its own process against the local Discord and RunComfy emulators (see
`bench.world`) and measures itself: event-loop lag (a 10 ms sampler task) and RSS. The jobs
arrive at 50 a second over 100 channels; each waits at RunComfy until the last one has
arrived, then queues 0-60 s and generates 30-90 s. The Discord emulator enforces Discord's
rate limits as commonly observed (5 message creates and 5 edits per 5 s per channel, 50
requests a second per bot), on its own clock, so the full run is in real time: a compressed
clock would make the jobs change faster than Discord lets anyone show them. (`--quick`
compresses the jobs' durations by `Shape.compression`, for a smoke run, not for figures.)

What members see is measured from the outside: the store's record of each state change (the
times the bot keeps for every job), the emulator's timestamp of each status message edit, the
RunComfy emulator's finish times, and the emulator's request log and 429s.
"""

from __future__ import annotations

import asyncio
import math
import random
import sqlite3
from collections import Counter
from dataclasses import dataclass

from bench.botproc import BotStats
from bench.common import MIB, Cell, Check, LagSampler, Report, Table, ms, percentile
from bench.timeline import (
    EDIT_ROUTE,
    MESSAGES_ROUTE,
    DeliveryLags,
    Lags,
    ShowLags,
    StatusWatch,
    arrivals_by_attachment,
    delivery_lags,
    metered,
    peak_in_window,
    per_channel_peaks,
    poll_times,
    show_lags,
    stored_jobs,
)
from bench.world import World, open_world, until
from bot.config import QuotaConfig
from bot.models import JobState
from sandbox.world import SandboxSettings

TITLE = "Capacity"
DEFAULT_RUNS = 1

QUEUE_RANGE = (0.0, 60.0)
RUN_RANGE = (30.0, 90.0)
DISCORD_PER_CHANNEL = 5
DISCORD_WINDOW = 5.0
DISCORD_GLOBAL = 50
SHOW_TARGET = 6.0
STALL = 0.1
"""An emulator loop lag this long or longer counts as a stall."""
DELIVERY_TARGET = 3.0


@dataclass(frozen=True)
class Shape:
    jobs: int
    rate: float  # arrivals per second
    channels: int
    compression: float
    """Divides the jobs' queue and run times and the bot's poll and edit intervals."""


FULL = Shape(jobs=1000, rate=50.0, channels=100, compression=1.0)
QUICK = Shape(jobs=40, rate=30.0, channels=10, compression=30.0)


def job_states(path: str) -> dict[str, int]:
    """How many of the bot's jobs ended in each state (read straight from its SQLite file)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall()
    return {str(state): int(count) for state, count in rows}


def _lag_row(name: str, samples: list[float]) -> list[Cell]:
    return [
        name,
        len(samples),
        ms(percentile(samples, 50)),
        ms(percentile(samples, 99)),
        ms(max(samples)) if samples else math.nan,
    ]


def _seconds_row(name: str, seconds: list[float], unseen: int | None = None) -> list[Cell]:
    row: list[Cell] = [
        name,
        len(seconds),
        percentile(seconds, 50),
        percentile(seconds, 99),
        max(seconds) if seconds else math.nan,
    ]
    return row if unseen is None else [*row, unseen]


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


@dataclass
class _Run:
    """What one run measured: the bot's own figures and what the emulators saw."""

    stats: BotStats
    arrived: float
    finished: float
    videos: int
    states: dict[str, int]
    polls: int
    unacknowledged: int
    hits: Counter[str]
    edit_peaks: dict[int, int]
    post_peaks: dict[int, int]
    global_peak: int
    edits: int
    shown: ShowLags
    delivery: DeliveryLags
    emulator_lag: list[float]
    hits_after_stall: int


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
        rate_limits=True,
    )
    async with open_world(
        settings, channels=shape.channels, max_concurrent_jobs=shape.jobs
    ) as world:
        watch = StatusWatch(world.discord)
        # The emulators' own loop: when it stalls, requests are stamped late and bunched.
        emulators = LagSampler()
        emulators.start()
        emulators.mark("run")
        await world.bot.mark("ramp")
        arrived, finished = await _drive(world, shape, random.Random(seed))
        # The last status edits (delivered) may still be on their way.
        await until(lambda: watch.showing(JobState.DELIVERED) >= shape.jobs, timeout=60)
        stats = await world.bot.stop()
        await emulators.stop()
        await watch.close()
        videos = world.videos()
        path = str(world.sandbox.config.database.path)
        states = job_states(path)
        jobs = stored_jobs(path)
        requests = world.discord.requests
        provider = world.sandbox.runcomfy.jobs
        polls = sum(
            1
            for r in world.sandbox.runcomfy.requests
            if r.method == "GET" and r.path.endswith("/result")
        )
        unacknowledged = sum(
            1 for r in world.discord.service.interactions.values() if r.acknowledged_at is None
        )
        run = _Run(
            stats=stats,
            arrived=arrived,
            finished=finished,
            videos=videos,
            states=states,
            polls=polls,
            unacknowledged=unacknowledged,
            hits=Counter(hit.scope for hit in world.discord.rate_limited),
            edit_peaks=per_channel_peaks(requests, "PATCH", EDIT_ROUTE, DISCORD_WINDOW),
            post_peaks=per_channel_peaks(requests, "POST", MESSAGES_ROUTE, DISCORD_WINDOW),
            global_peak=peak_in_window(metered(requests), 1.0),
            edits=sum(
                1
                for r in requests
                if r.method == "PATCH" and r.route == EDIT_ROUTE and r.status < 300
            ),
            shown=show_lags(jobs, watch.seen, provider, arrivals_by_attachment(world.discord)),
            delivery=delivery_lags(
                jobs,
                provider,
                world.discord,
                requests,
                poll_times(world.sandbox.runcomfy.requests),
            ),
            emulator_lag=emulators.phase("run"),
            hits_after_stall=_after_stall(
                [hit.at for hit in world.discord.rate_limited], emulators
            ),
        )
    if stats.error:
        raise RuntimeError(stats.error)
    return _report(shape, run)


def _report(shape: Shape, run: _Run) -> Report:
    stats = run.stats
    states = run.states
    finished = run.finished
    lag_all = stats.lag.get("ramp", []) + stats.lag.get("in flight", [])
    baseline = stats.rss_at.get("ramp", 0)
    delivered = states.get("delivered", 0)
    lost = shape.jobs - min(run.videos, delivered)
    edit_peak = max(run.edit_peaks.values(), default=0)
    hits = sum(run.hits.values())
    shown = run.shown
    delivery = run.delivery
    compressed = "" if shape.compression == 1 else f" (durations / {shape.compression:g})"

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
                _lag_row("the emulators' process (Discord, RunComfy), whole run", run.emulator_lag),
            ],
            "The emulators share the two cores with the bot: a stall of theirs delays when they "
            "stamp requests, so paced requests can be counted bunched.",
        ),
        Table(
            "Memory, throughput and delivery",
            ["measure", "value"],
            [
                ["jobs", shape.jobs],
                ["channels", shape.channels],
                ["time compression", shape.compression],
                ["RSS when ready, before any job (MiB)", baseline / MIB],
                ["peak RSS (MiB)", stats.peak_rss / MIB],
                [
                    "peak RSS - ready RSS, per job (KiB)",
                    (stats.peak_rss - baseline) / 1024 / shape.jobs,
                ],
                ["all jobs arrived after (s)", run.arrived],
                ["last video posted after (s)", finished],
                [f"provider polls per second{compressed}", run.polls / finished],
                [f"status edits per second{compressed}", run.edits / finished],
                ["status edits per job", run.edits / shape.jobs],
                ["jobs per channel", shape.jobs / shape.channels],
                ["jobs delivered (store)", delivered],
                ["videos posted (Discord)", run.videos],
                [
                    "jobs in another end state",
                    sum(n for s, n in states.items() if s != "delivered"),
                ],
                ["interactions never acknowledged", run.unacknowledged],
            ],
        ),
        Table(
            "Discord's rate limits, as the emulator counted them",
            ["measure", "value"],
            [
                ["429s received (all)", hits],
                ["429s, global limit", run.hits.get("global", 0)],
                ["429s, a route's bucket", run.hits.get("user", 0)],
                ["429s, a shared bucket", run.hits.get("shared", 0)],
                [f"most edits in one channel per {DISCORD_WINDOW:g} s", edit_peak],
                [
                    f"channels over {DISCORD_PER_CHANNEL} edits per {DISCORD_WINDOW:g} s",
                    sum(1 for p in run.edit_peaks.values() if p > DISCORD_PER_CHANNEL),
                ],
                [
                    f"most messages posted in one channel per {DISCORD_WINDOW:g} s",
                    max(run.post_peaks.values(), default=0),
                ],
                ["most requests under the global limit in 1 s", run.global_peak],
                [
                    f"429s within 1 s after the emulators' loop stalled {STALL * 1000:.0f} ms+",
                    run.hits_after_stall,
                ],
            ],
            "Peaks are over sliding windows, which is stricter than Discord's fixed buckets; "
            "edits and posts count successful requests. The global limit spares interaction "
            "callbacks and webhooks (the private acknowledgements).",
        ),
        Table(
            "What members saw: a job's state change (store) -> its status message shows it (s)",
            ["change", "changes", "p50 (s)", "p99 (s)", "max (s)", "never shown"],
            [
                _seconds_row(
                    "/animate reached Discord -> status message posted (wall clock)",
                    *_pair(shown.arrived),
                ),
                _seconds_row("accepted -> status message posted", *_pair(shown.posted)),
                _seconds_row("submitted -> shows queued", *_pair(shown.queued)),
                _seconds_row("seen generating -> shows it", *_pair(shown.running)),
                _seconds_row("delivered -> shows it", *_pair(shown.delivered)),
                _seconds_row("every change after the post", shown.changes, shown.unseen),
                _seconds_row(
                    "provider started generating -> shows it (polling included)",
                    *_pair(shown.provider_running),
                ),
            ],
            "A change counts as shown by the first status edit showing it or a later state "
            "(a short-lived state may be coalesced away). Edit times are the emulator's.",
        ),
        Table(
            "The video: provider finished (RunComfy) -> posted (Discord) (s)",
            ["part", "videos", "p50 (s)", "p99 (s)", "max (s)"],
            [
                _seconds_row("finished -> the bot's poll that sees it", delivery.noticed),
                _seconds_row("that poll -> the bot starts posting (fetch)", delivery.fetched),
                _seconds_row("starts posting -> the request reaches Discord", delivery.queued),
                _seconds_row("finished -> the request reaches Discord", delivery.to_request),
                _seconds_row("the upload (request received -> message made)", delivery.upload),
                _seconds_row("finished -> posted, upload included", delivery.total),
            ],
            f"The videos are tiny (32x32, 4 fps, a few kB); {delivery.unmatched} could not be "
            "matched to their post request.",
        ),
    ]
    checks = [
        Check("event-loop lag p99, whole run", ms(percentile(lag_all, 99)), "<", 50.0, "ms"),
        Check("peak RSS", stats.peak_rss / MIB, "<", 250.0, "MiB"),
        Check("lost jobs", float(lost), "==", 0.0),
        Check("429s received", float(hits), "==", 0.0),
        Check(
            f"most status edits in one channel per {DISCORD_WINDOW:g} s",
            float(edit_peak),
            "<=",
            float(DISCORD_PER_CHANNEL),
        ),
        Check(
            "state change -> status shows it, p99",
            percentile(shown.changes, 99) if not shown.unseen else math.nan,
            "<=",
            SHOW_TARGET,
            "s",
        ),
        Check(
            "provider finished -> video post reaches Discord (upload apart), p99",
            percentile(delivery.to_request, 99),
            "<=",
            DELIVERY_TARGET,
            "s",
        ),
    ]
    return Report(tables, checks)


def _after_stall(hits: list[float], sampler: LagSampler) -> int:
    """How many 429s came within a second after the emulators' own loop stalled: requests
    that reached it during the stall were stamped late, together."""
    stalls = [at for at, lag in zip(sampler.stamps, sampler.samples, strict=True) if lag >= STALL]
    return sum(1 for hit in hits if any(0.0 <= hit - at <= 1.0 for at in stalls))


def _pair(lags: Lags) -> tuple[list[float], int]:
    return lags.seconds, lags.unseen


def measure(quick: bool, seed: int) -> Report:
    return asyncio.run(_measure(QUICK if quick else FULL, seed))
