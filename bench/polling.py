"""Polling efficiency: provider calls per job and how late a finished job is noticed.

Two parts, over jobs whose queue time is uniform in 0-60 s and generation time in 30-90 s:

1. A discrete-event simulation on a virtual clock: the runner's poll loop (`JobMachine._poll`,
   replayed step by step with the real `next_poll_delay`) and fixed-interval pollers, over the
   same thousands of jobs. Nothing waits real time.
2. A validation of that simulation: the real `JobRunner` (real store, real RunComfy client
   over HTTP) against the RunComfy emulator, on an event loop whose clock runs 5 times faster
   than the wall clock (40 with --quick), so a 150 s job takes 30 real seconds. Every job's
   planned queue and run times are then replayed through the simulation and the two compared.
   The runner's own work (HTTP, SQLite) is stretched by the same factor, which delays its
   polls a little against the simulation's instant ones; at x5 that stays under a second.

The provider reports a queue position the way the emulator does (3, 2, 1 over the thirds of
the queue time). The bot's history of past run times (the median of the last 20 jobs with the
same settings) is drawn from the same distribution, in two variants: the generation time
alone (what `expected_run_seconds` means, and what the brief assumes) and submission to
delivery, which is what `Store.recent_run_seconds` returns today.
"""

from __future__ import annotations

import asyncio
import io
import math
import random
import selectors
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import aiohttp
from PIL import Image

from bench.common import Check, Report, Table, mean, percentile
from bot.config import Config, QuotaConfig, RunComfyConfig
from bot.jobs.notify import Delivery
from bot.jobs.polling import PollPlan, expected_run_seconds, next_poll_delay
from bot.jobs.runner import JobRunner
from bot.models import GuildDefaults, JobRecord, JobState, NewJob
from bot.runcomfy.client import RunComfyClient, Submission
from bot.runcomfy.states import Completed, ProviderState
from bot.store import Store, open_store
from sandbox.runcomfy import RunComfyEmulator

TITLE = "Polling efficiency"
DEFAULT_RUNS = 3

QUEUE_RANGE = (0.0, 60.0)
RUN_RANGE = (30.0, 90.0)
HISTORY_LENGTH = 20
# Submission to delivery adds the notice delay and the download and upload: about this much.
DELIVERY_SECONDS = 1.5
FIXED_INTERVALS = (0.5, 2.0, 5.0)
# Production's poll_interval, and the plan the runner derives from it.
POLL_INTERVAL = RunComfyConfig().poll_interval
PLAN = PollPlan(floor=min(1.0, POLL_INTERVAL), ceiling=max(POLL_INTERVAL * 3, 1.0))
# The emulator's queue positions (RunComfyEmulator.queue_depth).
QUEUE_DEPTH = 3
# The alternative queue model: one position per this many seconds of queue left.
SECONDS_PER_POSITION = 20.0

History = Literal["run", "stored"]
QueueModel = Literal["thirds", "slots"]


@dataclass(frozen=True)
class SimJob:
    queue: float
    run: float
    expected: float  # the median of the history the runner reads

    @property
    def finish(self) -> float:
        return self.queue + self.run


@dataclass(frozen=True)
class Outcome:
    calls: int
    delay: float  # seconds from the provider finishing to the bot noticing


# -- the simulation ------------------------------------------------------------------------


def draw_job(rng: random.Random) -> tuple[float, float]:
    return rng.uniform(*QUEUE_RANGE), rng.uniform(*RUN_RANGE)


def draw_history(rng: random.Random, kind: History) -> list[float]:
    past = [draw_job(rng) for _ in range(HISTORY_LENGTH)]
    if kind == "run":
        return [run for _queue, run in past]
    return [queue + run + DELIVERY_SECONDS for queue, run in past]


def make_jobs(count: int, rng: random.Random, history: History) -> list[SimJob]:
    jobs = []
    for _ in range(count):
        queue, run = draw_job(rng)
        expected = expected_run_seconds(draw_history(rng, history), 5)
        jobs.append(SimJob(queue, run, expected))
    return jobs


def queue_position(job: SimJob, at: float, model: QueueModel) -> int:
    """What the provider reports while the job waits (the emulator's formula for "thirds")."""
    left = job.queue - at
    if left <= 0:
        return 1
    if model == "slots":
        return max(1, math.ceil(left / SECONDS_PER_POSITION))
    return max(1, math.ceil(left / job.queue * QUEUE_DEPTH))


def provider_state(job: SimJob, at: float, model: QueueModel) -> tuple[str, int | None]:
    if at < job.queue:
        return "queued", queue_position(job, at, model)
    if at < job.finish:
        return "running", None
    return "completed", None


def simulate_ours(job: SimJob, model: QueueModel = "thirds", plan: PollPlan = PLAN) -> Outcome:
    """`JobMachine._poll` on a virtual clock: poll, note changes, sleep `next_poll_delay`."""
    now = 0.0
    shown: tuple[str, int | None] = ("queued", None)  # as stored after the submit
    since = now
    calls = 0
    while True:
        calls += 1
        step = provider_state(job, now, model)
        if step[0] == "completed":
            return Outcome(calls, now - job.finish)
        if step != shown:
            if step[0] != shown[0]:
                since = now
            shown = step
        now += next_poll_delay(
            state=step[0],
            queue_position=step[1],
            seconds_in_state=now - since,
            expected_run_seconds=job.expected,
            plan=plan,
        )


def simulate_fixed(job: SimJob, interval: float) -> Outcome:
    """A poller asking every `interval` seconds from the submit on."""
    polls_before = math.ceil(job.finish / interval)
    return Outcome(polls_before + 1, polls_before * interval - job.finish)


Poller = Callable[[SimJob], Outcome]


def pollers() -> list[tuple[str, Poller]]:
    found: list[tuple[str, Poller]] = [("ours (bot.polling)", simulate_ours)]
    for interval in FIXED_INTERVALS:
        found.append((f"fixed {interval:g} s", _fixed(interval)))
    return found


def _fixed(interval: float) -> Poller:
    return lambda job: simulate_fixed(job, interval)


@dataclass(frozen=True)
class Summary:
    calls_mean: float
    calls_p50: float
    delay_p50: float
    delay_p95: float


def summarize(outcomes: list[Outcome]) -> Summary:
    calls = [float(o.calls) for o in outcomes]
    delays = [o.delay for o in outcomes]
    return Summary(
        mean(calls), percentile(calls, 50), percentile(delays, 50), percentile(delays, 95)
    )


def comparison(jobs: list[SimJob]) -> dict[str, Summary]:
    return {name: summarize([poll(job) for job in jobs]) for name, poll in pollers()}


def comparison_table(title: str, results: dict[str, Summary], note: str) -> Table:
    baseline = results["fixed 2 s"].calls_mean
    rows: list[list[str | int | float | None]] = [
        [name, s.calls_mean, s.calls_p50, s.delay_p50, s.delay_p95, s.calls_mean / baseline]
        for name, s in results.items()
    ]
    return Table(
        title,
        [
            "poller",
            "calls/job (mean)",
            "calls/job (p50)",
            "delay p50 (s)",
            "delay p95 (s)",
            "calls / fixed 2 s",
        ],
        rows,
        note,
    )


# -- the validation: the real runner on a fast clock -----------------------------------------


class _ScaledSelector(selectors.DefaultSelector):
    """Waits 1/scale of the (scaled) time the loop asks for."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self._scale = scale

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        return super().select(None if timeout is None else timeout / self._scale)


class ScaledLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock runs `scale` times faster than the wall clock.

    Every sleep, timeout and `loop.time()` reading is in scaled seconds, so code that only
    uses the loop's clock runs unchanged, `scale` times faster.
    """

    def __init__(self, scale: float) -> None:
        super().__init__(_ScaledSelector(scale))
        self._scale = scale

    def time(self) -> float:
        return time.monotonic() * self._scale


class _TimedClient(RunComfyClient):
    """The real client, noting when (on the loop's clock) each job was seen completed."""

    noticed: dict[str, float]

    async def poll(self, sub: Submission, *, deadline: float) -> ProviderState:
        state = await super().poll(sub, deadline=deadline)
        if isinstance(state, Completed):
            self.noticed.setdefault(sub.request_id, asyncio.get_running_loop().time())
        return state


class _QuietNotifier:
    async def job_changed(self, job: JobRecord) -> None:
        return None

    async def deliver(self, job: JobRecord, delivery: Delivery) -> int | None:
        return None


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 360), (40, 90, 160)).save(out, "PNG")
    return out.getvalue()


_TOKEN = "bench-polling-token"
# A server with room for every job the benchmark makes.
_DEFAULTS = GuildDefaults(
    server_credits=10**6, member_credits=10**6, member_concurrent=1000, server_concurrent=1000
)


async def _seed_history(store: Store, durations: list[float], now: datetime) -> None:
    """Delivered past jobs whose submission-to-delivery times are `durations`."""
    for index, seconds in enumerate(durations):
        submitted = now - timedelta(hours=1, minutes=index)
        job = await store.reserve_request(
            NewJob(1, 1, 1, "history", "https://cdn.invalid/frame.png", None, "480p", 5),
            cost=1,
            role_ids=(),
            defaults=_DEFAULTS,
            now=submitted,
        )
        await store.mark_submitting(job.id, submitted)
        await store.set_submission(
            job.id,
            request_id=f"history-{index}",
            status_url="https://api.invalid/status",
            result_url="https://api.invalid/result",
            cancel_url="https://api.invalid/cancel",
            now=submitted,
        )
        await store.set_progress(job.id, JobState.RUNNING, queue_position=None, now=submitted)
        await store.finish_delivered(
            job.id, result_message_id=None, now=submitted + timedelta(seconds=seconds)
        )


@dataclass(frozen=True)
class RealJob:
    job: SimJob
    real: Outcome


async def _run_real(planned: list[tuple[float, float]], history: list[float]) -> list[RealJob]:
    loop = asyncio.get_running_loop()
    origin_loop = loop.time()
    origin = datetime.now(UTC)

    def clock() -> datetime:
        return origin + timedelta(seconds=loop.time() - origin_loop)

    finished: dict[str, float] = {}
    # The database is on tmpfs: its fsyncs would otherwise be stretched by the scale too.
    shm = Path("/dev/shm")
    memory_disk = await asyncio.to_thread(shm.is_dir)
    with tempfile.TemporaryDirectory(dir=shm if memory_disk else None) as tmp:
        async with (
            RunComfyEmulator(token=_TOKEN, video_size=(32, 32), fps=4) as emu,
            aiohttp.ClientSession() as http,
            open_store(Path(tmp) / "polling.sqlite3") as store,
        ):
            image_url = emu.add_asset("frame.png", _png())
            await _seed_history(store, history, clock())
            config = Config(
                runcomfy=RunComfyConfig(
                    base_url=emu.base_url,
                    poll_interval=POLL_INTERVAL,
                    max_concurrent_jobs=len(planned),
                ),
                quota=QuotaConfig(
                    member_credits=10**6,
                    server_credits=10**6,
                    member_concurrent_jobs=len(planned),
                    server_concurrent_jobs=len(planned),
                ),
            )
            client = _TimedClient(http, token=_TOKEN, base_url=emu.base_url)
            client.noticed = {}
            service = JobRunner(config=config, store=store, provider=client, http=http, clock=clock)

            async def watch() -> None:
                while True:
                    await emu.wait_until(
                        lambda: any(
                            j.status == "completed" and j.request_id not in finished
                            for j in emu.jobs.values()
                        )
                    )
                    for j in emu.jobs.values():
                        if j.status == "completed":
                            finished.setdefault(j.request_id, loop.time())

            watcher = asyncio.create_task(watch())
            for queue, run in planned:
                emu.plan_next_job(queue_seconds=queue, run_seconds=run)
            notifier = _QuietNotifier()
            for _ in planned:
                job = await store.reserve_request(
                    NewJob(1, 1, 2, "bench", image_url, None, "480p", 5),
                    cost=1,
                    role_ids=(),
                    defaults=config.quota.guild_defaults(),
                    now=clock(),
                )
                await service.start(job, notifier)
            while service.active_jobs:  # noqa: ASYNC110 - the runner has no "all done" event
                await asyncio.sleep(1.0)
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            await service.close()
            expected = expected_run_seconds(history, 5)
            results = []
            for request_id, emulated in emu.jobs.items():
                calls = emu.count("GET", f"/v1/requests/{request_id}/result")
                delay = client.noticed[request_id] - finished[request_id]
                sim = SimJob(emulated.queue_seconds, emulated.run_seconds, expected)
                results.append(RealJob(sim, Outcome(calls, delay)))
            return results


def run_real(
    planned: list[tuple[float, float]], history: list[float], scale: float
) -> list[RealJob]:
    with asyncio.Runner(loop_factory=lambda: ScaledLoop(scale)) as runner:
        return runner.run(_run_real(planned, history))


# -- the report ------------------------------------------------------------------------------


def measure(quick: bool, seed: int) -> Report:
    rng = random.Random(seed)
    count = 300 if quick else 4000
    by_history: dict[History, dict[str, Summary]] = {}
    other_queue: dict[History, Summary] = {}
    kinds: tuple[History, ...] = ("run", "stored")
    for kind in kinds:
        jobs = make_jobs(count, random.Random(rng.random()), kind)
        by_history[kind] = comparison(jobs)
        other_queue[kind] = summarize([simulate_ours(j, "slots") for j in jobs])

    real_count, scale = (8, 40.0) if quick else (30, 5.0)
    planned = [draw_job(rng) for _ in range(real_count)]
    past = draw_history(rng, "run")
    real = run_real(planned, past, scale)
    sim = [simulate_ours(r.job) for r in real]
    real_calls = [float(r.real.calls) for r in real]
    sim_calls = [float(o.calls) for o in sim]
    exact = sum(1 for r, s in zip(real, sim, strict=True) if r.real.calls == s.calls)
    call_gap = mean([abs(a - b) for a, b in zip(real_calls, sim_calls, strict=True)])

    ours_run = by_history["run"]["ours (bot.polling)"]
    fixed2_run = by_history["run"]["fixed 2 s"]
    ours_stored = by_history["stored"]["ours (bot.polling)"]
    fixed2_stored = by_history["stored"]["fixed 2 s"]
    tables = [
        comparison_table(
            f"Simulated, {count:,} jobs; history = past generation times",
            by_history["run"],
            "The history `expected_run_seconds` is meant to get "
            "(what the store fix proposed in BENCHMARKS.md gives it).",
        ),
        comparison_table(
            f"Simulated, {count:,} jobs; history = submission to delivery (the store today)",
            by_history["stored"],
            "`Store.recent_run_seconds` measures submitted_at -> finished_at, so the runner's "
            "'expected run time' includes the queue wait of past jobs.",
        ),
        Table(
            "Our schedule with another queue model (one position per 20 s of queue left)",
            ["history", "calls/job (mean)", "delay p50 (s)", "delay p95 (s)"],
            [
                [name, s.calls_mean, s.delay_p50, s.delay_p95]
                for name, s in (
                    ("generation times", other_queue["run"]),
                    ("submission to delivery", other_queue["stored"]),
                )
            ],
        ),
        Table(
            f"Validation: the real JobRunner vs the simulation, {real_count} jobs, "
            f"clock x{scale:g}",
            ["", "calls/job (mean)", "calls/job (p50)", "delay p50 (s)", "delay p95 (s)"],
            [
                [
                    "real runner + RunComfy emulator",
                    mean(real_calls),
                    percentile(real_calls, 50),
                    percentile([r.real.delay for r in real], 50),
                    percentile([r.real.delay for r in real], 95),
                ],
                [
                    "simulation of the same jobs",
                    mean(sim_calls),
                    percentile(sim_calls, 50),
                    percentile([o.delay for o in sim], 50),
                    percentile([o.delay for o in sim], 95),
                ],
            ],
            f"Same call count for {exact} of {real_count} jobs; mean |difference| "
            f"{call_gap:.2f} calls per job.",
        ),
    ]
    checks = [
        Check(
            "median delay, ours vs fixed 2 s (generation-time history)",
            ours_run.delay_p50 - fixed2_run.delay_p50,
            "<=",
            0.0,
            "s",
        ),
        Check(
            "calls, ours / fixed 2 s (generation-time history)",
            ours_run.calls_mean / fixed2_run.calls_mean,
            "<=",
            0.5,
        ),
        Check(
            "median delay, ours vs fixed 2 s (history as stored today)",
            ours_stored.delay_p50 - fixed2_stored.delay_p50,
            "<=",
            0.0,
            "s",
        ),
        Check(
            "calls, ours / fixed 2 s (history as stored today)",
            ours_stored.calls_mean / fixed2_stored.calls_mean,
            "<=",
            0.5,
        ),
        Check(
            "simulation vs real runner, mean calls per job",
            abs(mean(sim_calls) - mean(real_calls)) / mean(real_calls),
            "<=",
            0.1,
            "(relative)",
        ),
    ]
    return Report(tables, checks)
