"""Chaos with two bot processes on one PostgreSQL database: one connected to the gateway, one
running jobs only (``shard_ids = []``), and either of them killed at random.

The same storm as `bench.chaos` (RunComfy's malformed answers, errors, drops and stalls; Discord
answering 5xx, slowly, or losing its answers), with two `python -m bot run` processes instead of
one: every few seconds one of them, chosen at random, is killed with SIGKILL (now and then
stopped with SIGTERM) and started again, so jobs move between the processes through their
leases while members keep asking. The SQLite-only faults (a foreign lock on the file, a full
disk under it) have no PostgreSQL counterpart here. The figures are `bench.chaos`'s, read from
the PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import random
import signal
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench.chaos import (
    CHANNELS,
    FULL,
    JOB_ROWS,
    LEDGER_ROWS,
    QUICK,
    TERMINAL,
    BotRunner,
    Chaos,
    DiscordFaults,
    Injected,
    Shape,
    add_channels,
    figures_of,
)
from bench.common import Report, Table
from bench.world import frame_png, until
from sandbox.discord import InvocationError
from sandbox.world import Sandbox, SandboxSettings
from tests.harness.postgres import PostgresMissing, running_postgres

TITLE = "Chaos on PostgreSQL, two processes"
DEFAULT_RUNS = 3
JOBS_ONLY = "running jobs only"


def config_text(sandbox: Sandbox, proxy: DiscordFaults, url: str, shape: Shape, shards: str) -> str:
    return f"""
[discord]
api_base_url = "{proxy.base_url}/api/v10"
gateway_url = "{sandbox.discord.gateway_url}"
status_edit_interval = 0.3
{shards}

[runcomfy]
base_url = "{sandbox.runcomfy.base_url}"
poll_interval = 0.25
job_deadline = {shape.deadline}
connect_timeout = 2.0
read_timeout = 3.0
breaker_failures = 5
breaker_cooldown = 2.0
max_concurrent_jobs = 100

[jobs]
lease_seconds = {shape.lease}
shutdown_grace = 1.0

[database]
url = "{url}"

[quota]
member_credits = 100000
server_credits = 100000
member_concurrent_jobs = 500
server_concurrent_jobs = 500
"""


class JobsOnlyRunner(BotRunner):
    """A process with ``shard_ids = []``: started once it logs that it runs jobs."""

    async def start(self) -> None:
        began = time.monotonic()
        while True:
            seen = self._said()
            process = await self._spawn()
            while self._said() == seen and process.returncode is None:  # noqa: ASYNC110 - its log
                await asyncio.sleep(0.05)
            if process.returncode is None:
                self.up_since = time.monotonic()
                self.start_seconds.append(self.up_since - began)
                return
            self.failed_starts += 1
            await self.stop()
            await asyncio.sleep(0.5)

    async def _copy_output(self, process: asyncio.subprocess.Process) -> None:
        # Flushed as it comes: readiness is read from the log.
        assert process.stdout is not None
        with self.log.open("ab") as out:
            while chunk := await process.stdout.read(65536):
                out.write(chunk)
                out.flush()

    def _said(self) -> int:
        return self.log.read_text(errors="replace").count(JOBS_ONLY) if self.log.exists() else 0


async def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(_text(v) for v in row) for row in await conn.fetch(sql)]
    finally:
        await conn.close()


def _text(value: Any) -> Any:
    """Times as ISO text, as `bench.chaos` reads them from SQLite."""
    return value.isoformat() if isinstance(value, datetime) else value


async def _count(url: str, where: str = "TRUE") -> int:
    [(n,)] = await _rows(url, f"SELECT count(*) FROM jobs WHERE {where}")
    return int(n)


OPEN = "state NOT IN ({})".format(", ".join(f"'{s}'" for s in TERMINAL))


async def _watch_orphans(url: str, chaos: Chaos, bots: list[BotRunner], lease: float) -> None:
    """Open jobs without a live lease, while a process was up and settled in (as bench.chaos)."""
    while True:
        up = [time.monotonic() - b.up_since for b in bots if b.up_since is not None]
        if up:
            now = time.time()
            try:
                rows = await _rows(
                    url, f"SELECT id, lease_until, updated_at FROM jobs WHERE {OPEN}"
                )
            except (OSError, asyncpg.PostgresError):
                rows = []
            chaos.orphans.samples += 1
            for job_id, lease_until, updated_at in rows:
                expired = datetime.fromisoformat(lease_until or updated_at).timestamp()
                orphaned = min(now - expired, max(up))
                if orphaned > 0:
                    longest = chaos.orphans.longest
                    longest[job_id] = max(longest.get(job_id, 0.0), orphaned)
        await asyncio.sleep(0.5)


async def _kills(chaos: Chaos, bots: list[BotRunner], kills: list[int]) -> None:
    while chaos.running:
        await asyncio.sleep(chaos.rng.uniform(*chaos.shape.kill_every))
        if not chaos.running:
            break
        index = chaos.rng.randrange(len(bots))
        graceful = chaos.rng.random() < 0.15
        await bots[index].stop(signal.SIGTERM if graceful else signal.SIGKILL)
        if graceful:
            chaos.terms += 1
        else:
            chaos.kills += 1
            kills[index] += 1
        await bots[index].start()


async def _arrivals(chaos: Chaos, url: str) -> None:
    emu = chaos.sandbox.discord
    members = [emu.requester_id, emu.member_id, emu.moderator_id, emu.owner_id]
    frame = frame_png()
    while await _count(url) < chaos.shape.jobs:
        index = chaos.animates
        chaos.animates += 1
        channel = chaos.channels[index % len(chaos.channels)]
        chaos.sandbox.runcomfy.plan_next_job(
            queue_seconds=chaos.rng.uniform(0.2, 2.0), run_seconds=chaos.rng.uniform(0.5, 3.0)
        )
        try:
            image = await emu.upload_attachment("frame.png", frame, "image/png", channel_id=channel)
            await emu.invoke_command(
                "animate",
                {"image": image, "prompt": f"chaos {index}: waves rolling onto a beach"},
                user_id=members[index % len(members)],
                channel_id=channel,
            )
        except InvocationError:  # the gateway process is down: Discord refuses the command
            chaos.refused += 1
        await asyncio.sleep(1 / chaos.shape.rate)


async def _measure(shape: Shape, seed: int, url: str) -> Report:
    rng = random.Random(seed)
    injected = Injected()
    settings = SandboxSettings(
        port=0, queue_seconds=0.5, run_seconds=1.0, video_size=(64, 48), fps=4
    )
    with tempfile.TemporaryDirectory(prefix="seedance-chaos-pg-") as tmp:
        folder = Path(tmp)
        async with Sandbox(settings) as sandbox:
            proxy = DiscordFaults(sandbox.discord.base_url, rng, injected)
            await proxy.start()
            bots: list[BotRunner] = []
            for name, shards, kind in (
                ("front", "shard_count = 1\nshard_ids = [0]", BotRunner),
                ("back", "shard_ids = []", JobsOnlyRunner),
            ):
                config = folder / f"{name}.toml"
                config.write_text(config_text(sandbox, proxy, url, shape, shards))
                bots.append(kind(sandbox, config, folder / f"{name}.log"))
            chaos = Chaos(shape, sandbox, proxy, bots[0], folder / "unused", rng, injected)
            chaos.channels = add_channels(sandbox, CHANNELS)
            kills = [0, 0]
            watcher = asyncio.create_task(_watch_orphans(url, chaos, bots, shape.lease))
            try:
                for bot in bots:
                    await bot.start()
                if not await until(lambda: bool(sandbox.discord.registered_commands()), timeout=30):
                    raise RuntimeError("the gateway process never registered its commands")
                proxy.rate = shape.discord_fault_rate
                began = time.monotonic()
                injectors = [
                    asyncio.create_task(_kills(chaos, bots, kills)),
                    asyncio.create_task(chaos.provider_faults()),
                ]
                await _arrivals(chaos, url)
                chaos_seconds = time.monotonic() - began
                chaos.running = False
                proxy.rate = 0.0
                for task in injectors:
                    task.cancel()
                await asyncio.gather(*injectors, return_exceptions=True)
                sandbox.runcomfy.faults.clear()
                for bot in bots:
                    if bot.process is None or bot.up_since is None:
                        await bot.stop()
                        await bot.start()
                drained_from = time.monotonic()
                drain_limit = shape.deadline + 10 * shape.lease + 30
                ends = time.monotonic() + drain_limit
                while await _count(url, OPEN) and time.monotonic() < ends:  # noqa: ASYNC110
                    await asyncio.sleep(0.5)
                drain_seconds = time.monotonic() - drained_from
                await asyncio.sleep(2 * shape.lease)
                for bot in bots:
                    await bot.stop(signal.SIGTERM)
            finally:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
                for bot in bots:
                    await bot.stop()
                await proxy.close()
            jobs = await _rows(url, JOB_ROWS)
            ledger = await _rows(url, LEDGER_ROWS)
            report = figures_of(
                shape,
                sandbox,
                jobs,
                ledger,
                chaos,
                chaos_seconds=chaos_seconds,
                drain_seconds=drain_seconds,
            )
    report.tables.insert(
        1,
        Table(
            "The two processes",
            ["process", "starts", "killed with SIGKILL", "start to ready, max (s)"],
            [
                [
                    label,
                    bot.starts,
                    kills[index],
                    max(bot.start_seconds, default=0.0),
                ]
                for index, (label, bot) in enumerate(
                    zip(("gateway (shard 0)", "jobs only (shard_ids = [])"), bots, strict=True)
                )
            ],
            "'bot starts' and the start times in 'The run' are the gateway process's.",
        ),
    )
    return report


def measure(quick: bool, seed: int) -> Report:
    shape = QUICK if quick else FULL
    try:
        with running_postgres(durable=True) as server, server.database() as name:
            return asyncio.run(_measure(shape, seed, server.url(name)))
    except PostgresMissing as missing:
        return Report([], [], [f"PostgreSQL was not measured: {missing}"])
