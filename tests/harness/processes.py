"""Bot processes for the scale-out tests: ``python -m bot run`` subprocesses on one database,
against the emulators, each with its own config (shards) and log; killed, frozen and resumed
with real signals."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.world import Sandbox
from tests.harness.discord_fakes import eventually
from tests.harness.images import make_image

ROOT = Path(__file__).resolve().parents[2]
SUBMIT = "/v1/models/bytedance/seedance-1-0/lite/image-to-video"
JOBS_ONLY = "running jobs only"
"""What a process with ``shard_ids = []`` logs once it runs jobs."""


def config_text(
    sandbox: Sandbox,
    database_url: str,
    *,
    shards: str = "",
    lease_seconds: float = 1.5,
    max_concurrent_jobs: int = 20,
    job_deadline: float = 30.0,
    member_jobs: int = 1,
    metrics_port: int = 0,
) -> str:
    """A process's config: the emulators, the shared database, its shards (TOML lines), and
    ``/metrics`` and ``/healthz`` on ``metrics_port`` (0: off)."""
    return f"""
[discord]
api_base_url = "{sandbox.discord.api_base}"
gateway_url = "{sandbox.discord.gateway_url}"
status_edit_interval = 0.2
{shards}

[runcomfy]
base_url = "{sandbox.runcomfy.base_url}"
poll_interval = 0.2
job_deadline = {job_deadline}
connect_timeout = 2.0
read_timeout = 3.0
max_concurrent_jobs = {max_concurrent_jobs}

[jobs]
lease_seconds = {lease_seconds}
shutdown_grace = 1.0

[quota]
member_concurrent_jobs = {member_jobs}
server_concurrent_jobs = 20

[animate]
cooldown_seconds = 0

[database]
url = "{database_url}"

[metrics]
port = {metrics_port}
"""


@dataclass
class BotProcess:
    """One ``python -m bot run`` process; its output goes to ``log``."""

    sandbox: Sandbox
    config: Path
    log: Path
    process: asyncio.subprocess.Process | None = None
    started: int = field(default=0)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def start(self, *, gateway: bool = True) -> None:
        """Start it; wait until it is on the gateway, or (``gateway=False``) runs jobs only."""
        env = {
            **os.environ,
            "DISCORD_TOKEN": self.sandbox.secrets.discord_token or "",
            "RUNCOMFY_API_TOKEN": self.sandbox.secrets.runcomfy_token or "",
            "PYTHONPATH": str(ROOT),
        }
        env.pop("SEEDANCE_BOT_CONFIG", None)
        if gateway:
            self.sandbox.discord.gateway.connected.clear()
        seen = self.output().count(JOBS_ONLY)
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", "--config", str(self.config),
                env=env, stdout=out, stderr=out,
            )  # fmt: skip
        self.started += 1
        if gateway:
            await self.sandbox.discord.wait_for_bot(timeout=30)
            return

        async def running_jobs() -> bool:
            assert self.process is not None
            if self.process.returncode is not None:
                raise AssertionError(f"the bot stopped while starting:\n{self.output()}")
            return self.output().count(JOBS_ONLY) > seen

        await eventually(running_jobs, within=30)

    async def kill(self) -> None:
        """SIGKILL: no goodbye, leases and slots left as they were."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        self.process = None

    def freeze(self) -> None:
        """SIGSTOP: the process stops answering, without dying."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: the frozen process carries on where it stopped."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    async def stop(self) -> int | None:
        """SIGTERM (a graceful stop), then SIGKILL if it does not exit; its exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGCONT)
            process.terminate()
        try:
            async with asyncio.timeout(15):
                return await process.wait()
        except TimeoutError:
            process.kill()
            return await process.wait()


async def animate(sandbox: Sandbox, prompt: str, *, user_id: int | None = None) -> Any:
    """A member runs /animate in the emulator's channel; the handle once it is answered."""
    emu = sandbox.discord
    image = await emu.upload_attachment("dawn.png", make_image(640, 480), "image/png")
    handle = await emu.invoke_command(
        "animate", {"image": image, "prompt": prompt}, user_id=user_id or emu.requester_id
    )
    await handle.wait_response(15)
    return handle


def status_messages(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [
        m for m in sandbox.discord.channel_messages() if str(m["content"]).startswith("Video for")
    ]


def videos(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [
        m
        for m in sandbox.discord.channel_messages()
        if any(a["filename"].endswith(".mp4") for a in m.get("attachments", []))
    ]


def most_at_the_provider(sandbox: Sandbox) -> int:
    """The most jobs the provider ever had at once (queued or running), from its own record
    of when each job arrived and finished."""
    edges: list[tuple[float, int]] = []
    for job in sandbox.runcomfy.jobs.values():
        edges.append((job.created_at.timestamp(), 1))
        if job.finished_at is not None:
            edges.append((job.finished_at.timestamp(), -1))
    most = current = 0
    # At one instant, a finish comes before an arrival (the slot was given back first).
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        current += step
        most = max(most, current)
    return most
