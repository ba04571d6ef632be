"""The real bot in its own process, measured from inside: event-loop lag and memory.

The emulators and the benchmark's driver stay in the parent process, as Discord and RunComfy
would be elsewhere; so the child's lag and RSS are the bot's alone. The parent sends `mark`
messages to split the run into phases and `stop` to end it; the child answers with its figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import sys
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from bench.common import LagSampler, current_rss, peak_rss
from bot.app import run_bot
from bot.config import Config, Secrets

RSS_EVERY = 0.1


@dataclass
class BotStats:
    """What the bot process measured about itself."""

    lag: dict[str, list[float]] = field(default_factory=dict)  # phase -> lag samples (s)
    rss_max: dict[str, int] = field(default_factory=dict)  # phase -> highest RSS seen (bytes)
    rss_at: dict[str, int] = field(default_factory=dict)  # mark -> RSS at that moment
    peak_rss: int = 0  # ru_maxrss of the whole process
    error: str | None = None


def _child(config: Config, secrets: Secrets, conn: Connection, lag_interval: float) -> None:
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    asyncio.run(_serve(config, secrets, conn, lag_interval))


async def _serve(config: Config, secrets: Secrets, conn: Connection, lag_interval: float) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: inbox.put_nowait(conn.recv()))
    sampler = LagSampler(lag_interval)
    sampler.start()
    stats = BotStats()
    phase = "start"
    stats.rss_at[phase] = current_rss()

    async def watch_rss() -> None:
        while True:
            rss = current_rss()
            stats.rss_max[phase] = max(stats.rss_max.get(phase, 0), rss)
            await asyncio.sleep(RSS_EVERY)

    rss_task = asyncio.create_task(watch_rss())
    bot = asyncio.create_task(run_bot(config, secrets))
    while True:
        message = asyncio.ensure_future(inbox.get())
        done, _ = await asyncio.wait({message, bot}, return_when=asyncio.FIRST_COMPLETED)
        if bot in done:
            message.cancel()
            exc = bot.exception() if not bot.cancelled() else None
            stats.error = f"the bot stopped by itself: {exc!r}"
            break
        command = message.result()
        if command[0] == "mark":
            phase = str(command[1])
            sampler.mark(phase)
            stats.rss_at[phase] = current_rss()
            conn.send(("ok",))
        else:
            break
    bot.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await bot
    rss_task.cancel()
    await sampler.stop()
    for name, _start in sampler.phases:
        stats.lag[name] = sampler.phase(name)
    stats.peak_rss = peak_rss()
    loop.remove_reader(conn.fileno())
    conn.send(("done", stats))


class BotProcess:
    """Start the bot with `config` in a fresh interpreter; `mark` phases; `stop` for figures."""

    def __init__(self, config: Config, secrets: Secrets, *, lag_interval: float = 0.01) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_child, args=(config, secrets, child, lag_interval), daemon=True
        )
        self._child_conn = child
        self.stats: BotStats | None = None

    def start(self) -> None:
        self._process.start()
        self._child_conn.close()

    @property
    def pid(self) -> int:
        """The bot process's id (once started)."""
        pid = self._process.pid
        assert pid is not None
        return pid

    async def mark(self, phase: str) -> None:
        self._conn.send(("mark", phase))
        answer = await asyncio.to_thread(self._conn.recv)
        if answer[0] == "done":
            self.stats = answer[1]
            raise RuntimeError(f"the bot process ended early: {self.stats.error}")

    async def stop(self) -> BotStats:
        if self.stats is None:
            self._conn.send(("stop",))
            answer = await asyncio.to_thread(self._conn.recv)
            self.stats = answer[1]
        await asyncio.to_thread(self._process.join, 30)
        if self._process.is_alive():
            self._process.kill()
        assert self.stats is not None
        return self.stats
