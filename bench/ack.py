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
"""

from __future__ import annotations

import asyncio
import math

from bench.common import Check, Report, Table, mean, ms, percentile
from bench.world import World, open_world, until
from bot.config import QuotaConfig
from sandbox.discord import InteractionHandle
from sandbox.world import SandboxSettings

TITLE = "Acknowledgement latency"
DEFAULT_RUNS = 1

QUOTA = QuotaConfig(
    member_credits=1_000_000,
    server_credits=1_000_000,
    member_concurrent_jobs=1000,
    server_concurrent_jobs=1000,
)


def _row(name: str, latencies: list[float | None]) -> list[str | int | float | None]:
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


async def _loaded(
    jobs: int, rate: float, probes: int, settle: float
) -> tuple[list[float | None], list[float | None], int, float]:
    settings = SandboxSettings(
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
    async with open_world(settings, channels=20, max_concurrent_jobs=jobs) as world:
        runcomfy = world.sandbox.runcomfy
        burst = []
        loop = asyncio.get_running_loop()
        started = loop.time()
        for index in range(jobs):
            burst.append(await world.animate(index))
            await asyncio.sleep(max(0.0, started + (index + 1) / rate - loop.time()))
        burst_acks = await _acks(world, burst)
        if not await until(lambda: len(runcomfy.jobs) >= jobs, timeout=180):
            raise RuntimeError(f"only {len(runcomfy.jobs)} of {jobs} jobs reached RunComfy")
        submitted_after = loop.time() - started
        in_flight = len(runcomfy.jobs)
        # Let the status edits of the burst settle: the probes see the steady state.
        await asyncio.sleep(settle)
        probe_acks: list[float | None] = []
        for index in range(probes):
            handle = await world.animate(jobs + index)
            probe_acks += await _acks(world, [handle])
            await asyncio.sleep(0.1)
        return burst_acks, probe_acks, in_flight, submitted_after


async def _measure(quick: bool) -> Report:
    idle_probes, jobs, rate, probes = (5, 50, 50.0, 5) if quick else (100, 1000, 100.0, 200)
    idle = await _idle(idle_probes)
    burst, loaded, in_flight, submitted_after = await _loaded(
        jobs, rate, probes, 1.0 if quick else 6.0
    )
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
            _row(f"burst: {jobs:,} arriving at {rate:g}/s", burst),
            _row(f"{in_flight:,} jobs in flight", loaded),
        ],
        "Jobs in flight are queued at RunComfy and polled on production settings "
        "(poll_interval 5 s, status edits at most every 5 s), spread over 20 channels.",
    )
    got = [x for x in loaded if x is not None]
    checks = [
        Check(f"ack p99 with {in_flight:,} in flight", ms(percentile(got, 99)), "<", 100.0, "ms"),
        Check(
            "interactions not acknowledged within 3 s",
            float(sum(1 for x in [*idle, *burst, *loaded] if x is None)),
            "==",
            0.0,
        ),
    ]
    throughput = Table(
        "The burst, end to end",
        ["measure", "value"],
        [
            ["arrivals over (s)", jobs / rate],
            ["all jobs submitted to RunComfy after (s)", submitted_after],
            ["/animate carried through per second", jobs / submitted_after],
        ],
        "Each /animate is deferred, its image downloaded and checked, its credits reserved, "
        "its status message posted, then the job is submitted.",
    )
    return Report([table, throughput], checks)


def measure(quick: bool, seed: int) -> Report:
    return asyncio.run(_measure(quick))
