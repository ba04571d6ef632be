"""Kill the bot process with SIGKILL at each point of a job's life, start it again, and check
that the member still gets exactly one video (or a clear word and a refund), from one submit."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.config import Config, QuotaConfig
from bot.models import JobState
from bot.quota import period_window
from bot.store import open_store
from sandbox.world import Sandbox, SandboxSettings
from tests.harness.discord_fakes import eventually
from tests.harness.images import make_image
from tests.harness.store_calls import unfinished_jobs, usage_in

ROOT = Path(__file__).resolve().parents[2]
SUBMIT = "/v1/models/bytedance/seedance-1-0/lite/image-to-video"


@dataclass
class Harness:
    sandbox: Sandbox
    config_path: Path
    database: Path
    log_path: Path
    process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {
            **os.environ,
            "DISCORD_TOKEN": self.sandbox.secrets.discord_token or "",
            "RUNCOMFY_API_TOKEN": self.sandbox.secrets.runcomfy_token or "",
            "PYTHONPATH": str(ROOT),
        }
        env.pop("SEEDANCE_BOT_CONFIG", None)
        self.sandbox.discord.gateway.connected.clear()
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                "--config",
                str(self.config_path),
                env=env,
                stdout=log,
                stderr=log,
            )
        await self.sandbox.discord.wait_for_bot(timeout=20)

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        self.process = None

    async def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                async with asyncio.timeout(10):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
            self.process = None

    async def animate(self, prompt: str = "the sea at dawn") -> None:
        emu = self.sandbox.discord
        image = await emu.upload_attachment("dawn.png", make_image(640, 480), "image/png")
        handle = await emu.invoke_command("animate", {"image": image, "prompt": prompt})
        await handle.wait_response(10)

    def videos(self) -> list[dict[str, Any]]:
        return [
            m
            for m in self.sandbox.discord.channel_messages()
            if any(a["filename"].endswith(".mp4") for a in m.get("attachments", []))
        ]

    def status_messages(self) -> list[dict[str, Any]]:
        return [
            m
            for m in self.sandbox.discord.channel_messages()
            if m["content"].startswith("Video for")
        ]

    def submits(self) -> int:
        return self.sandbox.runcomfy.count("POST", SUBMIT)

    async def job_state(self) -> tuple[JobState, int, int]:
        """The one job's state and the member's (used, reserved) credits, read from the file."""
        async with open_store(self.database) as store:
            [job] = await unfinished_jobs(store) or await store.recent_jobs(
                self.sandbox.discord.guild_id, self.sandbox.discord.requester_id, limit=5
            )
            config = Config(quota=QuotaConfig())
            usage = await usage_in(
                store,
                job.guild_id,
                job.member_id,
                limits=_limits(config),
                window=period_window(config.quota.period, job.created_at),
            )
            return job.state, usage.member_used, usage.member_reserved


def _limits(config: Config) -> Any:
    from bot.quota import Limits

    q = config.quota
    return Limits(
        member_credits=q.member_credits,
        server_credits=q.server_credits,
        member_concurrent=q.member_concurrent_jobs,
        server_concurrent=q.server_concurrent_jobs,
    )


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    settings = SandboxSettings(
        port=0, queue_seconds=0.5, run_seconds=0.5, video_size=(96, 64), fps=8
    )
    async with Sandbox(settings) as sandbox:
        database = tmp_path / "bot.sqlite3"
        config_path = tmp_path / "config.toml"
        config_path.write_text(
            f"""
[discord]
api_base_url = "{sandbox.discord.api_base}"
gateway_url = "{sandbox.discord.gateway_url}"
status_edit_interval = 0.2

[runcomfy]
base_url = "{sandbox.runcomfy.base_url}"
poll_interval = 0.2
job_deadline = 8.0
connect_timeout = 2.0
read_timeout = 3.0

[jobs]
# A killed bot's jobs are taken over once their lease runs out.
lease_seconds = 1.5

[database]
path = "{database}"
"""
        )
        h = Harness(sandbox, config_path, database, tmp_path / "bot.log")
        try:
            yield h
        finally:
            await h.stop()
            if h.sandbox.discord.crashes:
                pytest.fail(f"the Discord emulator crashed: {h.sandbox.discord.crashes}")


async def until(check: Callable[[], bool], within: float = 20.0) -> None:
    async def holds() -> bool:
        return check()

    await eventually(holds, within=within)


def provider_status(h: Harness) -> str | None:
    jobs = list(h.sandbox.runcomfy.jobs.values())
    return jobs[0].status if jobs else None


@pytest.mark.parametrize("kill_when", ["in_queue", "in_progress"])
async def test_a_killed_bot_resumes_the_job_and_delivers_it_once(
    harness: Harness, kill_when: str
) -> None:
    harness.sandbox.runcomfy.plan_next_job(queue_seconds=1.5, run_seconds=1.5)
    await harness.start()
    await harness.animate()
    await until(lambda: provider_status(harness) == kill_when)
    # Kill once the bot has stored what the provider said (its status message shows it); a
    # kill before that is the submit's own case, below.
    shown = {"in_queue": "Waiting in the queue", "in_progress": "Generating"}[kill_when]
    await until(lambda: any(shown in str(m["embeds"]) for m in harness.status_messages()))
    [status_before] = harness.status_messages()
    await harness.kill()

    await harness.start()
    await until(lambda: len(harness.videos()) == 1)
    await until(lambda: "ready" in str(harness.status_messages()[0]["embeds"]))

    assert harness.submits() == 1
    # The same status message was edited: no second one was posted.
    assert [m["id"] for m in harness.status_messages()] == [status_before["id"]]
    await harness.stop()
    assert await harness.job_state() == (JobState.DELIVERED, 1, 0)


async def test_a_restart_after_delivery_never_posts_the_video_again(harness: Harness) -> None:
    await harness.start()
    await harness.animate()
    await until(lambda: len(harness.videos()) == 1)
    await until(lambda: "ready" in str(harness.status_messages()[0]["embeds"]))
    await harness.kill()

    await harness.start()
    # Give a resumed job (if there were one) ample time to poll and post again.
    await asyncio.sleep(2.0)
    assert len(harness.videos()) == 1
    assert harness.submits() == 1
    await harness.stop()
    assert await harness.job_state() == (JobState.DELIVERED, 1, 0)


async def test_a_kill_during_the_submit_is_never_resubmitted_and_is_refunded(
    harness: Harness,
) -> None:
    harness.sandbox.runcomfy.faults.add(route="submit", kind="hang", seconds=3.0)
    await harness.start()
    await harness.animate()
    await until(lambda: harness.submits() == 1)
    await asyncio.sleep(0.3)
    await harness.kill()

    await harness.start()
    await until(lambda: "Not confirmed" in str(harness.status_messages()[0]["embeds"]))
    state, used, reserved = await harness.job_state()
    assert (state, used, reserved) == (JobState.UNKNOWN_SUBMISSION, 0, 1)

    # The credits are held until the job's deadline in case it ran, then released.
    await until(lambda: "Failed" in str(harness.status_messages()[0]["embeds"]), within=20)
    assert harness.submits() == 1
    assert harness.videos() == []
    await harness.stop()
    assert await harness.job_state() == (JobState.FAILED, 0, 0)


async def test_an_ending_the_status_message_missed_is_shown_after_a_restart(
    harness: Harness,
) -> None:
    # Discord fails every edit of the status message while the job ends, then the bot stops:
    # the ending is stored, and the next start shows it instead of "Generating" for ever.
    harness.sandbox.runcomfy.plan_next_job(queue_seconds=0.5, run_seconds=2.0)
    await harness.start()
    await harness.animate()
    await until(lambda: any("Generating" in str(m["embeds"]) for m in harness.status_messages()))
    edit = "/channels/{channel_id}/messages/{message_id}"
    harness.sandbox.discord.fail_requests("PATCH", edit, status=503, times=10_000)
    await until(lambda: len(harness.videos()) == 1)
    await asyncio.sleep(1.0)  # the final edit is being tried (and failed)
    await harness.kill()
    [status] = harness.status_messages()
    assert "ready" not in str(status["embeds"])

    harness.sandbox.discord.fail_requests("PATCH", edit, times=0)
    await harness.start()
    await until(lambda: "ready" in str(harness.status_messages()[0]["embeds"]))
    assert len(harness.videos()) == 1
