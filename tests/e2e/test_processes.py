"""Two real bot processes on one PostgreSQL database, against the emulators: one connects the
gateway, the other only runs jobs. A process killed mid-job is taken over and the video is
delivered once; a Cancel clicked in one process ends the job the other runs; the provider's cap
holds across both; only the process holding shard 0 registers the commands, and each process
is healthy with its own shards (or none)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.models import JobState
from bot.store.postgres import PostgresStore
from sandbox.world import Sandbox, SandboxSettings
from tests.harness.discord_fakes import eventually
from tests.harness.ops import free_port, scrape, value, wait_health
from tests.harness.postgres import PostgresServer
from tests.harness.processes import (
    SUBMIT,
    BotProcess,
    animate,
    config_text,
    most_at_the_provider,
    status_messages,
    videos,
)

GATEWAY = "shard_count = 1\nshard_ids = [0]"
JOBS_ONLY = "shard_ids = []"


@dataclass
class Cluster:
    sandbox: Sandbox
    url: str
    folder: Path
    processes: list[BotProcess] = field(default_factory=list)

    def process(self, name: str, shards: str, **settings: Any) -> BotProcess:
        config = self.folder / f"{name}.toml"
        config.write_text(config_text(self.sandbox, self.url, shards=shards, **settings))
        bot = BotProcess(self.sandbox, config, self.folder / f"{name}.log")
        self.processes.append(bot)
        return bot

    def submits(self) -> int:
        return self.sandbox.runcomfy.count("POST", SUBMIT)

    async def jobs(self) -> list[tuple[JobState, str | None]]:
        """Every job's state and error, oldest first, read from the database."""
        async with PostgresStore.open(self.url) as store:
            emu = self.sandbox.discord
            found = await store.recent_jobs(emu.guild_id, emu.requester_id, limit=50)
            return [(job.state, job.error) for job in reversed(found)]

    async def credits(self) -> tuple[int, int]:
        """The server's (charged, held) credits, read from the database."""
        async with PostgresStore.open(self.url) as store:
            [row] = await store.usage_rows(guild_id=self.sandbox.discord.guild_id)
            return row.credits_charged, row.credits_held


@pytest.fixture
async def cluster(
    tmp_path: Path, postgres_server: PostgresServer, postgres_database: str
) -> AsyncIterator[Cluster]:
    settings = SandboxSettings(
        port=0, queue_seconds=0.5, run_seconds=0.5, video_size=(96, 64), fps=8
    )
    async with Sandbox(settings) as sandbox:
        found = Cluster(sandbox, postgres_server.url(postgres_database), tmp_path)
        try:
            yield found
        finally:
            for bot in found.processes:
                await bot.stop()
            if sandbox.discord.crashes:
                pytest.fail(f"the Discord emulator crashed: {sandbox.discord.crashes}")


async def until(check: Callable[[], bool], within: float = 30.0) -> None:
    async def holds() -> bool:
        return check()

    await eventually(holds, within=within)


async def jobs_in_flight(port: int, count: int) -> None:
    """Wait until the process on ``port`` reports ``count`` jobs running in it."""

    async def reported() -> bool:
        samples, _ = await scrape(f"http://127.0.0.1:{port}")
        return value(samples, "seedance_jobs_in_flight") == count

    await eventually(reported, within=30)


def embeds(sandbox: Sandbox) -> str:
    return " ".join(str(m["embeds"]) for m in status_messages(sandbox))


def sent(sandbox: Sandbox) -> list[dict[str, Any]]:
    """Status messages of jobs stored as sent to the provider (queued there or further)."""
    shown = ("Waiting in the queue", "Generating", "ready")
    return [m for m in status_messages(sandbox) if any(w in str(m["embeds"]) for w in shown)]


async def test_a_killed_process_s_job_is_taken_over_and_delivered_once(cluster: Cluster) -> None:
    sandbox = cluster.sandbox
    front = cluster.process("front", GATEWAY)
    worker = cluster.process("worker", JOBS_ONLY)
    await front.start()
    await worker.start(gateway=False)
    sandbox.runcomfy.plan_next_job(queue_seconds=1.0, run_seconds=2.0)
    await animate(sandbox, "the sea at dawn")
    # Killed while it polls the job: the provider runs it and the status says so.
    await until(lambda: "Generating" in embeds(sandbox))
    [before] = status_messages(sandbox)
    await front.kill()

    await until(lambda: len(videos(sandbox)) == 1)
    await until(lambda: "ready" in embeds(sandbox))
    assert "taking over job" in worker.output()
    assert cluster.submits() == 1
    # The same status message was edited by the other process: no second one was posted.
    assert [m["id"] for m in status_messages(sandbox)] == [before["id"]]
    assert await cluster.jobs() == [(JobState.DELIVERED, None)]
    assert await cluster.credits() == (1, 0)


async def test_a_cancel_clicked_in_one_process_ends_the_job_the_other_runs(
    cluster: Cluster,
) -> None:
    sandbox = cluster.sandbox
    front = cluster.process("front", GATEWAY)
    port = free_port()
    worker = cluster.process("worker", JOBS_ONLY, metrics_port=port)
    await front.start()
    await worker.start(gateway=False)
    sandbox.runcomfy.plan_next_job(queue_seconds=60.0)
    await animate(sandbox, "a lighthouse in a storm")
    await until(lambda: "Waiting in the queue" in embeds(sandbox))
    # The process that accepted it dies; the worker takes the queued job over.
    await front.kill()
    await until(lambda: "taking over job" in worker.output())
    await jobs_in_flight(port, 1)
    await front.start()

    [status] = status_messages(sandbox)
    [cancel] = [c for c in _custom_ids(status) if c.startswith("job:cancel:")]
    click = await sandbox.discord.click_button(int(status["id"]), cancel)
    await click.wait_response(15)
    await until(lambda: "Cancelled" in embeds(sandbox))
    # The worker stops running it: told through the database, or (when its poll comes first)
    # seeing it cancelled at the provider.
    await jobs_in_flight(port, 0)
    [job] = sandbox.runcomfy.jobs.values()
    assert job.status == "cancelled"
    assert await cluster.jobs() == [(JobState.CANCELLED, "Cancelled by its requester.")]
    assert await cluster.credits() == (0, 0)
    assert videos(sandbox) == []
    assert cluster.submits() == 1


async def test_a_process_frozen_past_its_lease_cannot_write_over_the_new_owner(
    cluster: Cluster,
) -> None:
    sandbox = cluster.sandbox
    front = cluster.process("front", GATEWAY)
    worker = cluster.process("worker", JOBS_ONLY)
    await front.start()
    await worker.start(gateway=False)
    sandbox.runcomfy.plan_next_job(queue_seconds=6.0, run_seconds=1.0)
    await animate(sandbox, "a kite over the dunes")
    await until(lambda: "Waiting in the queue" in embeds(sandbox))
    front.freeze()
    await until(lambda: "taking over job" in worker.output())
    # Resumed while both poll the same job: the old owner finds its lease gone and stops.
    front.thaw()
    await until(lambda: "lease lost to" in front.output())

    await until(lambda: len(videos(sandbox)) == 1)
    await until(lambda: "ready" in embeds(sandbox))
    assert len(status_messages(sandbox)) == 1
    assert cluster.submits() == 1
    assert await cluster.jobs() == [(JobState.DELIVERED, None)]
    assert await cluster.credits() == (1, 0)


async def test_the_provider_cap_holds_across_both_processes(cluster: Cluster) -> None:
    sandbox = cluster.sandbox
    sandbox.runcomfy.queue_seconds = 1.0
    sandbox.runcomfy.run_seconds = 1.0
    settings: dict[str, Any] = {"max_concurrent_jobs": 2, "member_jobs": 10}
    front = cluster.process("front", GATEWAY, **settings)
    worker = cluster.process("worker", JOBS_ONLY, **settings)
    await front.start()
    await worker.start(gateway=False)
    for n in range(4):
        await animate(sandbox, f"wave number {n}")

    # An answer is first "thinking": the job is stored a moment later, once its image passed.
    async def all_stored() -> bool:
        return len(await cluster.jobs()) == 4

    await eventually(all_stored, within=15)
    # Once both jobs at the provider are stored as sent (a kill during a submit is a case of
    # its own: never sent again, refunded at the deadline), the front dies with two jobs at
    # the provider and two in the line: the worker takes all four.
    await until(lambda: len(sent(sandbox)) == 2)
    await front.kill()
    await until(lambda: worker.output().count("taking over job") == 4)
    first_run = len(front.output())
    await front.start()
    for n in range(4, 7):
        await animate(sandbox, f"wave number {n}")

    await until(lambda: len(videos(sandbox)) == 7, within=60)
    assert most_at_the_provider(sandbox) == 2
    assert cluster.submits() == 7

    # A job is stored as delivered just after its video is posted.
    async def all_delivered() -> bool:
        return await cluster.jobs() == [(JobState.DELIVERED, None)] * 7

    await eventually(all_delivered, within=10)
    assert await cluster.credits() == (7, 0)
    # Both processes made videos: the cap was shared, not one process at a time.
    delivered = re.compile(r"job \d+ delivered")
    assert delivered.search(worker.output())
    assert delivered.search(front.output()[first_run:])


async def test_only_the_process_holding_shard_0_registers_the_commands(
    cluster: Cluster,
) -> None:
    emu = cluster.sandbox.discord
    worker_port = free_port()
    worker = cluster.process("worker", JOBS_ONLY, metrics_port=worker_port)
    await worker.start(gateway=False)
    # A process without shards never connects the gateway nor registers commands, and is
    # healthy without it.
    assert (emu.gateway.identify_count, emu.command_sync_count) == (0, 0)
    assert await wait_health(f"http://127.0.0.1:{worker_port}", 200) == "ok\n"
    # Picked while the worker listens on its own port, so never the same one.
    other_port = free_port()
    other = cluster.process("other", "shard_count = 2\nshard_ids = [1]", metrics_port=other_port)
    # A sync would come before the gateway connects (in setup_hook), so by now it would show.
    await other.start()
    assert [s.shard for s in emu.gateway.sessions.values()] == [[1, 2]]
    assert emu.command_sync_count == 0
    # Healthy once its one shard is connected and ready.
    assert await wait_health(f"http://127.0.0.1:{other_port}", 200) == "ok\n"
    first = cluster.process("first", "shard_count = 2\nshard_ids = [0]")
    await first.start()
    assert emu.command_sync_count == 1
    assert sorted(s.shard for s in emu.gateway.sessions.values()) == [[0, 2], [1, 2]]


def _custom_ids(message: dict[str, object]) -> list[str]:
    rows = message.get("components") or []
    assert isinstance(rows, list)
    return [str(item["custom_id"]) for row in rows for item in row["components"]]
