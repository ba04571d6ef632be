"""Acknowledgement latency: an interaction arriving at Discord -> the bot's defer reaching it.

The real bot runs in its own process against the local Discord and RunComfy emulators (see
`bench.world`); latencies are the emulator's own timestamps for one interaction: created (just
before it is dispatched over the gateway) and its first callback received. Discord allows 3 s.

Three situations:
- idle: one /animate at a time, each job finished before the next arrives;
- burst: 1,000 /animate arriving at 100 a second (the jobs stay queued at RunComfy);
- 1,000 in flight: probes while those 1,000 jobs are in flight (queued at the provider,
  polled, status messages shown). The server's concurrency cap is 1,000 (the highest the store
  allows), so the probes' own jobs are refused for quota — after the defer, which comes first.

And how many jobs a second reach RunComfy during a burst (RunComfy's own submit times): on
Discord's limits (a job is submitted without waiting for its status post, once its channel has
taken one of the bot's posts); and the bot alone (no limit in the emulator, the bot's
`requests_per_second` raised, 250 channels), at 100 a second and as fast as the driver can
send, each in a fresh world.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from dataclasses import dataclass

from bench.common import Cell, Check, Report, Table, mean, ms, percentile
from bench.world import World, open_world, until
from bot.config import QuotaConfig
from sandbox.discord import InteractionHandle
from sandbox.world import SandboxSettings

TITLE = "Acknowledgement latency"
DEFAULT_RUNS = 1

ALONE_CHANNELS = 250
"""Four jobs a channel: no channel's budget (5 posts per 5 s) holds the burst back."""
UNLIMITED = 100_000
SATURATION_TARGET = 250.0
WAIT_FOR_SUBMITS = 120.0

QUOTA = QuotaConfig(
    member_credits=1_000_000,
    server_credits=1_000_000,
    member_concurrent_jobs=1000,
    server_concurrent_jobs=1000,
)


def _row(name: str, latencies: list[float | None]) -> list[Cell]:
    got = [ms(x) for x in latencies if x is not None]
    return [
        name,
        len(latencies),
        mean(got),
        percentile(got, 50),
        percentile(got, 99),
        max(got) if got else math.nan,
        len(latencies) - len(got),
    ]


async def _acks(world: World, handles: list[InteractionHandle]) -> list[float | None]:
    await until(
        lambda: all(world.ack_seconds(h) is not None or h.failed for h in handles), timeout=10
    )
    return [world.ack_seconds(h) for h in handles]


async def _idle(probes: int) -> list[float | None]:
    settings = SandboxSettings(
        port=0,
        queue_seconds=0.0,
        run_seconds=0.05,
        video_size=(32, 32),
        fps=4,
        poll_interval=0.05,
        status_edit_interval=0.2,
        quota=QUOTA,
    )
    async with open_world(settings, channels=2, max_concurrent_jobs=20) as world:
        latencies: list[float | None] = []
        for index in range(probes):
            handle = await world.animate(index)
            latencies += await _acks(world, [handle])
            if not await until(lambda i=index: world.videos() > i, timeout=30):
                raise RuntimeError(f"idle probe {index} was never delivered")
        return latencies


@dataclass
class Burst:
    """One burst of /animate: when each arrived and was acknowledged, when each job reached
    RunComfy (POSIX seconds, off both emulators' clocks)."""

    acks: list[float | None]
    arrivals: list[float]
    submits: list[float]
    """Of the jobs that reached RunComfy before the benchmark stopped waiting."""
    ended: float
    """When the benchmark stopped waiting for them."""

    @property
    def arrival_rate(self) -> float:
        """Arrivals per second the driver achieved."""
        span = self.arrivals[-1] - self.arrivals[0] if len(self.arrivals) > 1 else math.nan
        return (len(self.arrivals) - 1) / span if span > 0 else math.nan

    @property
    def carried(self) -> float:
        """Jobs reaching RunComfy per second: all of them, first arrival -> last submit (or
        the end of the wait, when some never did)."""
        if not self.submits:
            return 0.0
        if len(self.submits) < len(self.arrivals):
            return len(self.submits) / (self.ended - self.arrivals[0])
        return len(self.submits) / (max(self.submits) - self.arrivals[0])

    @property
    def steady(self) -> float:
        """Jobs reaching RunComfy per second in the middle of the burst (10th-90th job)."""
        ordered = sorted(self.submits)
        if len(ordered) < len(self.arrivals) * 0.9:
            return self.carried  # most never arrived: there was no steady state
        low, high = round(len(ordered) * 0.1), round(len(ordered) * 0.9) - 1
        return (high - low) / (ordered[high] - ordered[low])


async def _burst(world: World, jobs: int, rate: float, offset: int = 0) -> Burst:
    """`jobs` /animate at `rate` a second (as fast as the driver can, for `math.inf`), then
    wait for every job to reach RunComfy."""
    runcomfy = world.sandbox.runcomfy
    before = len(runcomfy.jobs)
    handles: list[InteractionHandle] = []
    arrivals: list[float] = []
    loop = asyncio.get_running_loop()
    started = loop.time()
    for index in range(jobs):
        arrivals.append(time.time())
        handles.append(await world.animate(offset + index))
        if math.isfinite(rate):
            await asyncio.sleep(max(0.0, started + (index + 1) / rate - loop.time()))
    acks = await _acks(world, handles)
    # A bot that cannot keep up is given two minutes; what reached RunComfy by then counts.
    await until(lambda: len(runcomfy.jobs) >= before + jobs, timeout=WAIT_FOR_SUBMITS)
    submits = sorted(job.created_at.timestamp() for job in runcomfy.jobs.values())[before:]
    return Burst(acks, arrivals, submits, time.time())


def _queued_settings() -> SandboxSettings:
    return SandboxSettings(
        port=0,
        queue_seconds=3600.0,
        run_seconds=60.0,
        video_size=(32, 32),
        fps=4,
        # Production's polling and status edits: poll_interval 5 s, an edit at most every 5 s.
        poll_interval=5.0,
        status_edit_interval=5.0,
        job_deadline=7200.0,
        quota=QUOTA,
    )


async def _loaded(
    jobs: int, rate: float, probes: int, settle: float
) -> tuple[Burst, list[float | None], int]:
    """The burst on a Discord enforcing its limits, then probes with every job in flight."""
    async with open_world(_queued_settings(), channels=20, max_concurrent_jobs=jobs) as world:
        burst = await _burst(world, jobs, rate)
        in_flight = len(world.sandbox.runcomfy.jobs)
        # Let the status edits of the burst settle: the probes see the steady state.
        await asyncio.sleep(settle)
        probe_acks: list[float | None] = []
        for index in range(probes):
            handle = await world.animate(jobs + index)
            probe_acks += await _acks(world, [handle])
            await asyncio.sleep(0.1)
        return burst, probe_acks, in_flight


async def _alone(jobs: int, rates: list[float], *, one_world: bool = False) -> list[Burst]:
    """The bot's own ceiling: Discord's limits off in the emulator and in the bot, and enough
    channels that no channel's budget binds. Each burst in a fresh world, or (a smoke run,
    `one_world`) one after the other in the same one."""
    settings = dataclasses.replace(_queued_settings(), rate_limits=False)
    found: list[Burst] = []
    groups = [rates] if one_world else [[rate] for rate in rates]
    for group in groups:
        async with open_world(
            settings,
            channels=ALONE_CHANNELS,
            max_concurrent_jobs=jobs * len(group),
            requests_per_second=UNLIMITED,
        ) as world:
            for index, rate in enumerate(group):
                found.append(await _burst(world, jobs, rate, offset=index * jobs))
    return found


def _burst_row(name: str, burst: Burst) -> list[Cell]:
    got = [ms(x) for x in burst.acks if x is not None]
    return [
        name,
        len(burst.arrivals),
        len(burst.submits),
        burst.arrival_rate,
        burst.carried,
        burst.steady,
        percentile(got, 99),
    ]


async def _measure(quick: bool) -> Report:
    idle_probes, jobs, rate, probes = (5, 50, 50.0, 5) if quick else (100, 1000, 100.0, 200)
    idle = await _idle(idle_probes)
    limited, loaded, in_flight = await _loaded(jobs, rate, probes, 1.0 if quick else 6.0)
    alone, saturated = await _alone(jobs, [rate, math.inf], one_world=quick)
    table = Table(
        "/animate: interaction created -> defer received (ms)",
        [
            "situation",
            "interactions",
            "mean (ms)",
            "p50 (ms)",
            "p99 (ms)",
            "max (ms)",
            "not acknowledged",
        ],
        [
            _row("idle (nothing else in flight)", idle),
            _row(f"burst: {jobs:,} arriving at {rate:g}/s", limited.acks),
            _row(f"{in_flight:,} jobs in flight", loaded),
            _row(f"burst: {jobs:,} as fast as the driver sends, the bot alone", saturated.acks),
        ],
        "Jobs in flight are queued at RunComfy and polled on production settings "
        "(poll_interval 5 s, status edits at most every 5 s), spread over 20 channels.",
    )
    throughput = Table(
        "Jobs reaching RunComfy during a burst",
        [
            "burst",
            "/animate",
            "reached RunComfy",
            "arrivals/s",
            "reached RunComfy/s (first arrival -> last submit)",
            "reached RunComfy/s (10th-90th percentile job)",
            "ack p99 (ms)",
        ],
        [
            _burst_row(f"{rate:g}/s on Discord's limits (20 channels)", limited),
            _burst_row(f"{rate:g}/s, the bot alone ({ALONE_CHANNELS} channels)", alone),
            _burst_row(
                f"as fast as the driver sends, the bot alone ({ALONE_CHANNELS} ch.)", saturated
            ),
        ],
        "Each /animate is deferred, its image downloaded and checked, its credits reserved, "
        "then the job is submitted; its status message follows within Discord's limits (5 "
        "posts per 5 s per channel, 50 requests a second per bot), except a channel's first, "
        "which goes before its job. The bot alone: the emulator enforces no limit and the "
        "bot's requests_per_second is raised, as for a bot Discord allows more. Submit times "
        "are RunComfy's.",
    )
    got = [x for x in loaded if x is not None]
    checks = [
        Check(f"ack p99 with {in_flight:,} in flight", ms(percentile(got, 99)), "<", 100.0, "ms"),
        Check(
            "interactions not acknowledged within 3 s",
            float(sum(1 for x in [*idle, *limited.acks, *loaded, *saturated.acks] if x is None)),
            "==",
            0.0,
        ),
        Check(
            f"jobs reaching RunComfy per second, {rate:g}/s burst, the bot alone",
            alone.carried,
            ">=",
            0.95 * rate,
            "/s",
        ),
        Check(
            "jobs reaching RunComfy per second, saturated, the bot alone",
            saturated.steady,
            ">=",
            SATURATION_TARGET,
            "/s",
        ),
    ]
    return Report([table, throughput], checks)


def measure(quick: bool, seed: int) -> Report:
    return asyncio.run(_measure(quick))
