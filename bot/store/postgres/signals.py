"""Signals between the processes on one database: NOTIFY to send, one LISTEN connection each.

A signal is sent with ``pg_notify`` on one channel, as ``topic|text``; inside a store
transaction it is sent only if that transaction commits. Each process listens on a connection
of its own (outside the pool), kept open by a background task: when it drops, the task
connects again and tells the handlers ``resync``, since signals sent meanwhile were lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any

import asyncpg

from bot.store.coordination import SignalHandler
from bot.store.postgres.rows import Conn
from bot.store.signals import deliver

__all__ = ["CHANNEL", "Listener", "notify"]

log = logging.getLogger(__name__)

CHANNEL = "seedance_bot"
"""The one NOTIFY channel of the bot's signals."""

CONNECT_TIMEOUT = 10.0
RETRY_CEILING = 30.0
"""Longest pause between two attempts at connecting the listener again."""


async def notify(conn: Conn, topic: str, text: str = "") -> None:
    """Send a signal from inside the caller's transaction (sent when it commits)."""
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"{topic}|{text}")


def _set(event: asyncio.Event, _conn: object) -> None:
    event.set()


class Listener:
    """One LISTEN connection for the process, kept open, handing signals to the handlers."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._handlers: list[SignalHandler] = []
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    @property
    def listening(self) -> bool:
        """Whether the connection is up now (signals are heard)."""
        return self._listening.is_set()

    async def add(self, handler: SignalHandler) -> None:
        """Hand signals to ``handler`` from now on; the first call connects (waiting for the
        first attempt, so a signal sent once this returns is heard)."""
        self._handlers.append(handler)
        if self._task is None:
            tried = asyncio.Event()
            self._task = asyncio.create_task(self._keep_listening(tried), name="pg-listener")
            await tried.wait()

    async def close(self) -> None:
        """Stop listening and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        topic, _, text = str(payload).partition("|")
        deliver(self._handlers, topic, text)

    async def _keep_listening(self, tried: asyncio.Event) -> None:
        pause = 0.5
        first = True
        while True:
            try:
                conn = await asyncpg.connect(
                    self._url,
                    timeout=CONNECT_TIMEOUT,
                    server_settings={"application_name": "seedance-bot listener"},
                )
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("cannot listen for other processes' signals (%s); retrying", exc)
                tried.set()
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_CEILING)
                continue
            lost = asyncio.Event()
            try:
                conn.add_termination_listener(functools.partial(_set, lost))
                await conn.add_listener(CHANNEL, self._heard)
                self._listening.set()
                tried.set()
                pause = 0.5
                if not first:
                    log.info("listening for other processes' signals again")
                    deliver(self._handlers, "resync", "")
                first = False
                await lost.wait()
                log.warning("the connection listening for signals dropped; reconnecting")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("listening for signals failed (%s); reconnecting", exc)
            finally:
                self._listening.clear()
                if lost.is_set():
                    conn.terminate()
                else:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
            await asyncio.sleep(pause)
