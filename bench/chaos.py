"""Chaos: hundreds of jobs through the real bot while everything around it misbehaves.

The real bot (`python -m bot run`, a subprocess started as an operator would) runs against
the local Discord and RunComfy emulators with short leases, and is killed with SIGKILL and
started again every few seconds. Meanwhile, at random:

- RunComfy answers malformed bodies (absurd numbers, unknown states, missing fields, deeply
  nested or very large JSON, a video URL with user-info), 5xx errors, dropped connections and
  stalls, on every route (submit, status, result, cancel, the video download);
- Discord answers 5xx, answers slowly, or does the work and loses the answer (the connection
  closes after the emulator handled the request), through a fault proxy in front of the Discord
  emulator's REST API (the emulator has no fault hook of its own);
- another connection holds the SQLite file with `BEGIN EXCLUSIVE` for a moment (once a full run,
  past the bot's 10 s busy timeout);
- the disk is "full" for a moment: the bot process's RLIMIT_FSIZE is lowered to 4 KiB with
  prlimit, so no file of it can grow (SQLite and the video download get a write error, as on a
  full disk), then restored.

Then the faults stop, the bot runs undisturbed until every job settled, and everything is
read from the emulators' records and the database: jobs lost, double submits, double posts,
the credit identity and how many jobs settled within the deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import resource
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import Check, Report, Table, percentile
from bench.world import frame_png, until
from sandbox.discord import InvocationError
from sandbox.discord.snowflake import SnowflakeGenerator
from sandbox.discord.state import TEXT_CHANNEL, Channel
from sandbox.runcomfy.responses import drop
from sandbox.world import Sandbox, SandboxSettings

TITLE = "Chaos"
DEFAULT_RUNS = 3

ROOT = Path(__file__).resolve().parents[1]
TERMINAL = ("delivered", "failed", "cancelled", "timed_out")
BUSY_TIMEOUT = 10.0  # the store's SQLite busy timeout (bot.store.sqlite.store)
FULL_DISK_BYTES = 4096
CHANNELS = 20
_CHANNEL_IDS = SnowflakeGenerator(worker_id=30)


@dataclass(frozen=True)
class Shape:
    jobs: int  # at least this many jobs recorded by the bot
    rate: float  # /animate per second
    lease: float  # [jobs] lease_seconds
    deadline: float  # [runcomfy] job_deadline
    kill_every: tuple[float, float]  # seconds between kills
    provider_fault_every: float  # mean seconds between RunComfy faults
    discord_fault_rate: float  # share of Discord requests (channels, webhooks) that fail
    lock_every: tuple[float, float]  # seconds between database locks
    full_disk_every: tuple[float, float]  # seconds between "full disk" moments
    long_lock: bool  # once, hold the database past the busy timeout


FULL = Shape(
    jobs=200,
    rate=3.0,
    lease=2.0,
    deadline=30.0,
    kill_every=(3.0, 6.0),
    provider_fault_every=0.6,
    discord_fault_rate=0.05,
    lock_every=(4.0, 10.0),
    full_disk_every=(6.0, 14.0),
    long_lock=True,
)
QUICK = Shape(
    jobs=20,
    rate=3.0,
    lease=2.0,
    deadline=12.0,
    kill_every=(3.0, 5.0),
    provider_fault_every=0.6,
    discord_fault_rate=0.05,
    lock_every=(2.0, 4.0),
    full_disk_every=(3.0, 6.0),
    long_lock=False,
)

# Settled within the deadline: finished by created_at + job_deadline + this many leases. A
# job whose deadline passes while the bot is down can only be ended once a process is back
# (a restart takes 1-3 s here) and has claimed it (one lease).
DEADLINE_SLACK_LEASES = 5


# -- RunComfy faults -----------------------------------------------------------------------


def _nested(depth: int) -> Any:
    body: Any = "in_queue"
    for _ in range(depth):
        body = [body]
    return body


def malformed_bodies() -> list[tuple[str, str, Any]]:
    """(label, route, body) of answers a provider should never give, each with HTTP 200."""
    return [
        (
            "queue position of 5,000 digits",
            "status",
            {"status": "in_queue", "queue_position": "9" * 5000},
        ),
        ("queue position 1e300", "status", {"status": "in_queue", "queue_position": 1e300}),
        ("negative queue position", "status", {"status": "in_queue", "queue_position": -7}),
        ("unknown state", "status", {"status": "teleporting"}),
        ("no status", "status", {}),
        ("a list, not an object", "status", ["in_queue"]),
        ("status nested 500 deep", "status", {"status": _nested(500)}),
        ("1 MB of padding", "status", {"status": "in_progress", "padding": "x" * 1_000_000}),
        ("unknown state", "result", {"status": "teleporting"}),
        ("completed, no output", "result", {"status": "completed"}),
        ("completed, output not an object", "result", {"status": "completed", "output": "x"}),
        (
            "video URL with user-info",
            "result",
            {"status": "completed", "output": {"video": "http://user:secret@127.0.0.1:9/v.mp4"}},
        ),
        ("submit without a request id", "submit", {"status_url": "x"}),
        ("request id not a string", "submit", {"request_id": {"id": 1}}),
        ("cancel answers nonsense", "cancel", {"outcome": 12}),
    ]


@dataclass
class Injected:
    """What was injected, by kind, to print with the figures."""

    counts: Counter[str] = field(default_factory=Counter)


def add_provider_fault(sandbox: Sandbox, rng: random.Random, injected: Injected) -> None:
    faults = sandbox.runcomfy.faults
    pick = rng.random()
    if pick < 0.4:
        _label, route, body = rng.choice(malformed_bodies())
        faults.add(route=route, kind="json", body=body)  # type: ignore[arg-type]
        injected.counts[f"RunComfy malformed answer ({route})"] += 1
        return
    # Polls are many and retried; a failed submit or download ends at most one job each.
    route = rng.choice(["status"] * 4 + ["result"] * 3 + ["submit", "cancel", "video"])
    if pick < 0.7:
        status = rng.choice([500, 502, 503])
        faults.add(route=route, kind="http", status=status)  # type: ignore[arg-type]
        injected.counts[f"RunComfy {status}"] += 1
    elif pick < 0.9:
        faults.add(route=route, kind="drop")  # type: ignore[arg-type]
        injected.counts["RunComfy dropped connection"] += 1
    else:
        # Stalls past the bot's read timeout (3 s here); a stalled submit still creates the job.
        faults.add(route=route, kind="hang", seconds=rng.uniform(1.0, 5.0))  # type: ignore[arg-type]
        injected.counts["RunComfy stall 1-5 s"] += 1


# -- Discord faults: a proxy in front of the emulator's REST API -----------------------------

FAULTABLE = re.compile(r"^/api/v\d+/(channels|webhooks|interactions)/")
HOP_BY_HOP = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "content-encoding",
}


class DiscordFaults:
    """Forwards the bot's REST calls to the Discord emulator, failing some of them.

    Kinds: `5xx` (answered here, never reaching Discord), `slow` (forwarded after 1-3 s) and
    `answer lost` (Discord handles the request, then the connection closes before the answer:
    a message may exist that the bot never heard about).
    """

    def __init__(self, upstream: str, rng: random.Random, injected: Injected) -> None:
        self.upstream = upstream
        self.rate = 0.0
        self._rng = rng
        self._injected = injected
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.base_url = ""

    async def start(self) -> None:
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = next(a[1] for a in self._runner.addresses if isinstance(a, tuple))
        self.base_url = f"http://127.0.0.1:{port}"
        self._http = aiohttp.ClientSession(auto_decompress=False)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None
        body = await request.read()
        kind = None
        if self.rate and FAULTABLE.match(request.path) and self._rng.random() < self.rate:
            kind = self._rng.choice(["5xx", "slow", "answer lost"])
        if kind == "5xx":
            status = self._rng.choice([500, 502, 503])
            self._injected.counts[f"Discord {status} ({request.method})"] += 1
            return web.json_response(
                {"message": f"{status}: Server Error", "code": 0},
                status=status,
                headers={"Via": "1.1 google"},
            )
        if kind == "slow":
            self._injected.counts[f"Discord slow answer 1-3 s ({request.method})"] += 1
            await asyncio.sleep(self._rng.uniform(1.0, 3.0))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with self._http.request(
            request.method,
            self.upstream + request.path_qs,
            data=body,
            headers=headers,
            allow_redirects=False,
        ) as upstream:
            payload = await upstream.read()
            answer_headers = {
                k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP
            }
            status = upstream.status
        if kind == "answer lost":
            self._injected.counts[f"Discord answer lost after the work ({request.method})"] += 1
            return drop(request)
        return web.Response(body=payload, status=status, headers=answer_headers)


# -- the bot process ------------------------------------------------------------------------


class BotRunner:
    """`python -m bot run` as a subprocess; killed, restarted, its output kept in a log."""

    def __init__(self, sandbox: Sandbox, config: Path, log: Path) -> None:
        self.sandbox = sandbox
        self.config = config
        self.log = log
        self.process: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self.up_since: float | None = None  # monotonic time the running bot connected
        self.starts = 0
        self.start_seconds: list[float] = []
        self.failed_starts = 0

    async def start(self) -> None:
        """Start the bot and wait until it is connected; a bot that exits first (e.g. a start
        during a full disk) is started again, as a supervisor (systemd, Docker) would."""
        began = time.monotonic()
        while True:
            process = await self._spawn()
            connected = asyncio.create_task(self.sandbox.discord.wait_for_bot(timeout=60))
            exited = asyncio.create_task(process.wait())
            await asyncio.wait({connected, exited}, return_when=asyncio.FIRST_COMPLETED)
            if connected.done() and connected.exception() is None:
                exited.cancel()
                await asyncio.gather(exited, return_exceptions=True)
                self.up_since = time.monotonic()
                self.start_seconds.append(self.up_since - began)
                return
            connected.cancel()
            exited.cancel()
            await asyncio.gather(connected, exited, return_exceptions=True)
            self.failed_starts += 1
            await self.stop()
            await asyncio.sleep(0.5)

    async def _spawn(self) -> asyncio.subprocess.Process:
        env = {
            **os.environ,
            "DISCORD_TOKEN": self.sandbox.secrets.discord_token or "",
            "RUNCOMFY_API_TOKEN": self.sandbox.secrets.runcomfy_token or "",
            "PYTHONPATH": str(ROOT),
        }
        env.pop("SEEDANCE_BOT_CONFIG", None)
        self.sandbox.discord.gateway.connected.clear()
        # Output through a pipe, so that a "full disk" (RLIMIT_FSIZE) does not cut the log.
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--config",
            str(self.config),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._pump = asyncio.create_task(self._copy_output(self.process))
        self.starts += 1
        return self.process

    async def _copy_output(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        with self.log.open("ab") as out:
            while chunk := await process.stdout.read(65536):
                out.write(chunk)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def stop(self, sig: int = signal.SIGKILL) -> None:
        process, self.process, self.up_since = self.process, None, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            async with asyncio.timeout(15):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
        if self._pump is not None:
            await self._pump


# -- reading the database -------------------------------------------------------------------


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        yield db
    finally:
        db.close()


def when(text: str | None) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


@dataclass
class Orphans:
    """Open jobs seen with an expired lease while a bot process was up and settled in."""

    longest: dict[int, float] = field(default_factory=dict)  # job id -> longest seen (s)
    samples: int = 0

    def look(self, path: Path, bot: BotRunner, lease: float) -> None:
        if bot.up_since is None:
            return
        up_for = time.monotonic() - bot.up_since
        if not path.exists():
            return
        now = time.time()
        try:
            with read_only(path) as db:
                rows = db.execute(
                    "SELECT id, lease_until, updated_at FROM jobs WHERE state NOT IN "
                    "('delivered', 'failed', 'cancelled', 'timed_out')"
                ).fetchall()
        except sqlite3.Error:
            return
        self.samples += 1
        for job_id, lease_until, updated_at in rows:
            expired = when(lease_until) or when(updated_at) or now
            # Only the part of the orphan time when a bot was running counts.
            orphaned = min(now - expired, up_for)
            if orphaned > 0:
                self.longest[job_id] = max(self.longest.get(job_id, 0.0), orphaned)


# -- the run --------------------------------------------------------------------------------


def config_text(sandbox: Sandbox, proxy: DiscordFaults, database: Path, shape: Shape) -> str:
    return f"""
[discord]
api_base_url = "{proxy.base_url}/api/v10"
gateway_url = "{sandbox.discord.gateway_url}"
status_edit_interval = 0.3

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
path = "{database}"

[quota]
member_credits = 100000
server_credits = 100000
member_concurrent_jobs = 500
server_concurrent_jobs = 500
"""


def job_count(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with read_only(path) as db:
            return int(db.execute("SELECT count(*) FROM jobs").fetchone()[0])
    except sqlite3.Error:
        return 0


def open_jobs(path: Path) -> int:
    with read_only(path) as db:
        return int(
            db.execute(
                "SELECT count(*) FROM jobs WHERE state NOT IN "
                "('delivered', 'failed', 'cancelled', 'timed_out')"
            ).fetchone()[0]
        )


def hold_lock(path: Path, seconds: float) -> None:
    """Another connection holds the database with BEGIN EXCLUSIVE for `seconds`."""
    db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
    try:
        db.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        db.execute("COMMIT")
    finally:
        db.close()


@dataclass
class Chaos:
    shape: Shape
    sandbox: Sandbox
    proxy: DiscordFaults
    bot: BotRunner
    database: Path
    rng: random.Random
    injected: Injected
    orphans: Orphans = field(default_factory=Orphans)
    running: bool = True
    kills: int = 0
    terms: int = 0
    animates: int = 0
    refused: int = 0
    channels: list[int] = field(default_factory=list)

    async def kills_and_restarts(self) -> None:
        while self.running:
            await asyncio.sleep(self.rng.uniform(*self.shape.kill_every))
            if not self.running:
                break
            # Mostly SIGKILL; now and then the graceful SIGTERM an operator would send.
            graceful = self.rng.random() < 0.15
            await self.bot.stop(signal.SIGTERM if graceful else signal.SIGKILL)
            if graceful:
                self.terms += 1
            else:
                self.kills += 1
            await self.bot.start()

    async def provider_faults(self) -> None:
        while self.running:
            await asyncio.sleep(self.rng.expovariate(1 / self.shape.provider_fault_every))
            add_provider_fault(self.sandbox, self.rng, self.injected)

    async def database_locks(self) -> None:
        long_done = not self.shape.long_lock
        while self.running:
            await asyncio.sleep(self.rng.uniform(*self.shape.lock_every))
            if not self.running:
                break
            if not long_done and job_count(self.database) >= self.shape.jobs // 2:
                seconds = BUSY_TIMEOUT + 1.5
                long_done = True
                self.injected.counts["database locked past the busy timeout (11.5 s)"] += 1
            else:
                seconds = self.rng.uniform(0.5, 3.0)
                self.injected.counts["database locked 0.5-3 s"] += 1
            await asyncio.to_thread(hold_lock, self.database, seconds)

    async def full_disks(self) -> None:
        while self.running:
            await asyncio.sleep(self.rng.uniform(*self.shape.full_disk_every))
            pid = self.bot.pid
            if not self.running or pid is None or self.bot.up_since is None:
                continue
            try:
                resource.prlimit(pid, resource.RLIMIT_FSIZE, (FULL_DISK_BYTES, FULL_DISK_BYTES))
            except (ProcessLookupError, PermissionError, OSError):
                continue
            self.injected.counts["full disk 1-3 s"] += 1
            await asyncio.sleep(self.rng.uniform(1.0, 3.0))
            with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
                unlimited = resource.RLIM_INFINITY
                resource.prlimit(pid, resource.RLIMIT_FSIZE, (unlimited, unlimited))

    async def watch_orphans(self) -> None:
        while True:
            self.orphans.look(self.database, self.bot, self.shape.lease)
            await asyncio.sleep(0.5)

    async def arrivals(self, frame: bytes) -> None:
        emu = self.sandbox.discord
        members = [emu.requester_id, emu.member_id, emu.moderator_id, emu.owner_id]
        channels = self.channels
        while job_count(self.database) < self.shape.jobs:
            index = self.animates
            self.animates += 1
            channel = channels[index % len(channels)]
            self.sandbox.runcomfy.plan_next_job(
                queue_seconds=self.rng.uniform(0.2, 2.0), run_seconds=self.rng.uniform(0.5, 3.0)
            )
            try:
                image = await emu.upload_attachment(
                    "frame.png", frame, "image/png", channel_id=channel
                )
                await emu.invoke_command(
                    "animate",
                    {"image": image, "prompt": f"chaos {index}: waves rolling onto a beach"},
                    user_id=members[index % len(members)],
                    channel_id=channel,
                )
            except InvocationError:  # the bot is offline: Discord refuses the command
                self.refused += 1
            await asyncio.sleep(1 / self.shape.rate)


def add_channels(sandbox: Sandbox, count: int) -> list[int]:
    """`count` text channels, so that Discord's per-channel limit (5 messages per 5 s) is not
    what paces the jobs (each has a status message, its edits and a delivery post)."""
    emu = sandbox.discord
    ids = [emu.channel_id, emu.other_channel_id]
    for index in range(count - len(ids)):
        channel = Channel(
            _CHANNEL_IDS.next(), TEXT_CHANNEL, f"chaos-{index}", emu.guild_id, position=index + 2
        )
        emu.world.channels[channel.id] = channel
        ids.append(channel.id)
    return ids


def button_posts(sandbox: Sandbox, action: str) -> Counter[int]:
    """Job id -> messages in the channels carrying that job's ``action`` button."""
    posts: Counter[int] = Counter()
    for message in sandbox.discord.service.messages.values():
        ids = set()
        for row in message.components:
            for item in row.get("components", []):
                match = re.fullmatch(rf"job:{action}:(\d+)", str(item.get("custom_id", "")))
                if match:
                    ids.add(int(match.group(1)))
        for job_id in ids:
            posts[job_id] += 1
    return posts


def delivery_posts(sandbox: Sandbox) -> Counter[int]:
    """Job id -> messages carrying that job's delivery (its Retry button)."""
    return button_posts(sandbox, "retry")


def by_id(jobs: list[Any]) -> set[int]:
    return {int(row[0]) for row in jobs}


def videos_posted(sandbox: Sandbox) -> int:
    return sum(
        1
        for message in sandbox.discord.service.messages.values()
        if any(a.filename.endswith(".mp4") for a in message.attachments)
    )


async def _measure(shape: Shape, seed: int) -> Report:
    rng = random.Random(seed)
    injected = Injected()
    settings = SandboxSettings(
        port=0, queue_seconds=0.5, run_seconds=1.0, video_size=(64, 48), fps=4
    )
    with tempfile.TemporaryDirectory(prefix="seedance-chaos-") as tmp:
        folder = Path(tmp)
        database = folder / "bot.sqlite3"
        log = folder / "bot.log"
        async with Sandbox(settings) as sandbox:
            proxy = DiscordFaults(sandbox.discord.base_url, rng, injected)
            await proxy.start()
            config = folder / "config.toml"
            config.write_text(config_text(sandbox, proxy, database, shape))
            bot = BotRunner(sandbox, config, log)
            chaos = Chaos(shape, sandbox, proxy, bot, database, rng, injected)
            chaos.channels = add_channels(sandbox, CHANNELS)
            watcher = asyncio.create_task(chaos.watch_orphans())
            try:
                await bot.start()
                if not await until(lambda: bool(sandbox.discord.registered_commands()), timeout=30):
                    raise RuntimeError(f"the bot never registered its commands; see {log}")
                proxy.rate = shape.discord_fault_rate
                began = time.monotonic()
                injectors = [
                    asyncio.create_task(chaos.kills_and_restarts()),
                    asyncio.create_task(chaos.provider_faults()),
                    asyncio.create_task(chaos.database_locks()),
                    asyncio.create_task(chaos.full_disks()),
                ]
                await chaos.arrivals(frame_png())
                chaos_seconds = time.monotonic() - began
                # The faults stop; the bot runs undisturbed until every job settled.
                chaos.running = False
                proxy.rate = 0.0
                for task in injectors:
                    task.cancel()
                await asyncio.gather(*injectors, return_exceptions=True)
                sandbox.runcomfy.faults.clear()
                unlimited = resource.RLIM_INFINITY
                if bot.pid is not None:
                    with contextlib.suppress(OSError):
                        resource.prlimit(bot.pid, resource.RLIMIT_FSIZE, (unlimited, unlimited))
                if bot.process is None or bot.up_since is None:
                    await bot.stop()
                    await bot.start()
                drained_from = time.monotonic()
                drain_limit = shape.deadline + 10 * shape.lease + 30
                await until(lambda: open_jobs(database) == 0, timeout=drain_limit, every=0.5)
                drain_seconds = time.monotonic() - drained_from
                # Give a late double post (if any) the time to show, then stop gracefully.
                await asyncio.sleep(2 * shape.lease)
                await bot.stop(signal.SIGTERM)
            finally:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
                await bot.stop()
                await proxy.close()
            report = _figures(
                shape,
                sandbox,
                database,
                chaos,
                chaos_seconds=chaos_seconds,
                drain_seconds=drain_seconds,
            )
            if os.environ.get("SEEDANCE_CHAOS_KEEP"):
                kept = Path(os.environ["SEEDANCE_CHAOS_KEEP"]) / f"run-{seed}"
                kept.mkdir(parents=True, exist_ok=True)
                for name in ("bot.log", "bot.sqlite3"):
                    if (folder / name).exists():
                        (kept / name).write_bytes((folder / name).read_bytes())
                report.notes.append(f"run {seed}: log and database kept in {kept}")
            return report


JOB_ROWS = (
    "SELECT id, guild_id, member_id, prompt, state, owner, lease_until, created_at, "
    "finished_at, request_id, attempts FROM jobs"
)
LEDGER_ROWS = "SELECT job_id, guild_id, member_id, credits, state FROM usage_ledger"


def _figures(
    shape: Shape,
    sandbox: Sandbox,
    database: Path,
    chaos: Chaos,
    *,
    chaos_seconds: float,
    drain_seconds: float,
) -> Report:
    with read_only(database) as db:
        jobs = db.execute(JOB_ROWS).fetchall()
        ledger = db.execute(LEDGER_ROWS).fetchall()
    return figures_of(
        shape,
        sandbox,
        jobs,
        ledger,
        chaos,
        chaos_seconds=chaos_seconds,
        drain_seconds=drain_seconds,
    )


def figures_of(
    shape: Shape,
    sandbox: Sandbox,
    jobs: list[Any],
    ledger: list[Any],
    chaos: Chaos,
    *,
    chaos_seconds: float,
    drain_seconds: float,
) -> Report:
    """The run's figures from the database's ``JOB_ROWS`` and ``LEDGER_ROWS`` (times as ISO
    text) and the emulators' records."""
    states = Counter(str(row[4]) for row in jobs)
    open_at_end = [row for row in jobs if row[4] not in TERMINAL]

    # Double submits: provider jobs per bot job, matched by the job's unique prompt.
    provider_jobs = Counter(
        str(job.payload.get("prompt")) for job in sandbox.runcomfy.jobs.values()
    )
    submits = {row[0]: provider_jobs.get(str(row[3]), 0) for row in jobs}
    double_submits = sum(1 for n in submits.values() if n > 1)
    extra_submits = sum(n - 1 for n in submits.values() if n > 1)

    # Double posts: delivery messages per job.
    posts = delivery_posts(sandbox)
    double_posts = sum(1 for n in posts.values() if n > 1)
    delivered = {row[0] for row in jobs if row[4] == "delivered"}
    delivered_unposted = sum(1 for j in delivered if posts.get(j, 0) == 0)
    posted_undelivered = sum(1 for j in posts if j not in delivered)
    # A settled job's status message no longer offers Cancel: it shows how the job ended.
    settled_ids = {row[0] for row in jobs if row[4] in TERMINAL}
    stale = button_posts(sandbox, "cancel")
    stale_status = sum(n for j, n in stale.items() if j in settled_ids or j not in by_id(jobs))

    # Lost: open at the end, or open without a live lease for over 2 leases while a bot ran.
    orphan_limit = 2 * shape.lease
    orphaned = {j for j, s in chaos.orphans.longest.items() if s > orphan_limit}
    lost = {row[0] for row in open_at_end} | orphaned
    longest_orphan = max(chaos.orphans.longest.values(), default=0.0)

    # The credit identity, per member and per server.
    by_job = {row[0]: row for row in jobs}
    reserved: dict[tuple[str, int], int] = defaultdict(int)
    charged: dict[tuple[str, int], int] = defaultdict(int)
    released: dict[tuple[str, int], int] = defaultdict(int)
    held: dict[tuple[str, int], int] = defaultdict(int)
    charged_undelivered = released_delivered = 0
    for job_id, guild_id, member_id, credits, state in ledger:
        for key in (("member", member_id), ("server", guild_id)):
            reserved[key] += credits
            if state == "committed":
                charged[key] += credits
            elif state == "released":
                released[key] += credits
            else:
                held[key] += credits
        job_state = by_job[job_id][4] if job_id in by_job else None
        if state == "committed" and job_state != "delivered":
            charged_undelivered += 1
        if state == "released" and job_state == "delivered":
            released_delivered += 1
    members = sorted({key for key in reserved if key[0] == "member"})
    servers = sorted({key for key in reserved if key[0] == "server"})
    broken = [key for key in reserved if reserved[key] != charged[key] + released[key] or held[key]]
    identity_holds = not broken and not charged_undelivered and not released_delivered
    no_ledger = sum(1 for row in jobs if row[0] not in {entry[0] for entry in ledger})

    # Settled within the deadline (plus a restart and a lease).
    slack = DEADLINE_SLACK_LEASES * shape.lease
    settle = []
    within = 0
    for row in jobs:
        created, finished = when(row[7]), when(row[8])
        if created is None or finished is None or row[4] not in TERMINAL:
            continue
        settle.append(finished - created)
        if finished - created <= shape.deadline + slack:
            within += 1
    within_share = 100.0 * within / len(jobs) if jobs else float("nan")

    credit_rows: list[list[Any]] = []
    for key in [*servers, *members]:
        credit_rows.append(
            [
                f"{key[0]} {_member_name(sandbox, key[1]) if key[0] == 'member' else ''}".strip(),
                reserved[key],
                charged[key],
                released[key],
                held[key],
                "holds" if key not in broken else "BROKEN",
            ]
        )
    outcome_rows: list[list[Any]] = [[state, states.get(state, 0)] for state in sorted(states)]
    injected_rows: list[list[Any]] = [
        [kind, n] for kind, n in sorted(chaos.injected.counts.items())
    ]
    injected_rows += [
        ["bot killed with SIGKILL, then started again", chaos.kills],
        ["bot stopped with SIGTERM, then started again", chaos.terms],
    ]
    tables = [
        Table(
            "The run",
            ["measure", "value"],
            [
                ["/animate sent", chaos.animates],
                ["/animate refused by Discord (the bot offline)", chaos.refused],
                ["jobs recorded by the bot", len(jobs)],
                ["seconds of chaos", chaos_seconds],
                ["seconds to drain afterwards (no faults)", drain_seconds],
                ["bot starts", chaos.bot.starts],
                ["  of which exited before connecting (started again)", chaos.bot.failed_starts],
                ["bot start to connected, p50 (s)", percentile(chaos.bot.start_seconds, 50)],
                ["bot start to connected, max (s)", max(chaos.bot.start_seconds, default=0.0)],
                ["provider jobs created", len(sandbox.runcomfy.jobs)],
                ["videos posted", videos_posted(sandbox)],
            ],
        ),
        Table("What was injected", ["fault", "times"], injected_rows),
        Table(
            "Jobs",
            ["measure", "value"],
            [
                ["jobs lost (open at the end, or unowned > 2 leases while a bot ran)", len(lost)],
                ["  open at the end", len(open_at_end)],
                ["  unowned > 2 leases while a bot ran", len(orphaned)],
                ["longest unowned while a bot ran (s)", longest_orphan],
                ["jobs submitted more than once", double_submits],
                ["extra provider jobs", extra_submits],
                ["jobs posted more than once", double_posts],
                ["delivered but never posted", delivered_unposted],
                ["posted but not delivered", posted_undelivered],
                ["status messages still offering Cancel for a settled job", stale_status],
                ["charged but not delivered", charged_undelivered],
                ["delivered but released", released_delivered],
                ["jobs without a ledger row", no_ledger],
                [f"settled within deadline + {slack:g} s", within],
                ["settle time p50 (s)", percentile(settle, 50)],
                ["settle time max (s)", max(settle, default=0.0)],
            ],
        ),
        Table("How the jobs ended", ["state", "jobs"], outcome_rows),
        Table(
            "Credits from the ledger (reserved = charged + released)",
            ["who", "reserved", "charged", "released", "still reserved", "identity"],
            credit_rows,
        ),
    ]
    checks = [
        Check("jobs lost", float(len(lost)), "==", 0.0),
        Check("double submits", float(double_submits), "==", 0.0),
        Check("double posts", float(double_posts), "==", 0.0),
        Check(
            "credit identity broken (members and servers)",
            float(len(broken) + charged_undelivered + released_delivered),
            "==",
            0.0,
        ),
        Check(f"settled within the deadline (+{slack:g} s)", within_share, ">=", 100.0, "%"),
        Check("stale status messages", float(stale_status), "==", 0.0),
    ]
    notes = []
    if not identity_holds:
        notes.append(f"credit identity broken for {broken}")
    return Report(tables, checks, notes)


def _member_name(sandbox: Sandbox, member_id: int) -> str:
    emu = sandbox.discord
    names = {
        emu.requester_id: "requester",
        emu.member_id: "member",
        emu.moderator_id: "moderator",
        emu.owner_id: "owner",
    }
    return names.get(member_id, str(member_id))


def measure(quick: bool, seed: int) -> Report:
    return asyncio.run(_measure(QUICK if quick else FULL, seed))
