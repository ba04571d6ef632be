"""Whether this process can do its work: the database takes a write and, in a process with
gateway shards, the gateway is connected.

The answer is a reason (one line, for ``/healthz``'s 503) or None. A database that hangs is
waited for a few seconds only, and never twice at once: while one check is still stuck, the
next one answers at once with the same trouble instead of queueing behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

log = logging.getLogger(__name__)

CHECK_KEY = "health_checked_at"
"""The meta key each check writes (the time of the check): proof the database takes writes."""
DATABASE_WAIT = 3.0
"""Seconds a check waits for the database before calling it unusable."""


class MetaStore(Protocol):
    """The one thing a health check asks of the store."""

    async def set_meta(self, key: str, value: str) -> None: ...


GatewayCheck = Callable[[], str | None]
"""Why the gateway is not usable, or None when it is connected."""


class Health:
    """Checks the process's dependencies on demand (for ``/healthz``)."""

    def __init__(
        self,
        store: MetaStore,
        *,
        gateway: GatewayCheck | None,
        database_wait: float = DATABASE_WAIT,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``gateway`` is None in a process without shards (it only runs jobs)."""
        self._store = store
        self._gateway = gateway
        self._wait = database_wait
        self._clock = clock
        self._write: asyncio.Task[None] | None = None

    async def trouble(self) -> str | None:
        """The first reason this process cannot do its work, or None when it can."""
        if self._gateway is not None:
            reason = self._gateway()
            if reason is not None:
                return f"gateway: {reason}"
        reason = await self._database_trouble()
        return None if reason is None else f"database: {reason}"

    async def _database_trouble(self) -> str | None:
        write = self._write
        if write is not None and not write.done():
            return f"a write has not answered for over {self._wait:g} s"
        write = asyncio.create_task(
            self._store.set_meta(CHECK_KEY, self._clock().isoformat()), name="health-write"
        )
        write.add_done_callback(_retrieve)
        self._write = write
        done, _ = await asyncio.wait({write}, timeout=self._wait)
        if not done:
            # Left running rather than cancelled: cancelling could not free a connection
            # stuck inside the database, and the next check reports it while it is stuck.
            return f"no answer to a write within {self._wait:g} s"
        exc = write.exception()
        if exc is not None:
            log.warning("health check: the database refused a write: %r", exc)
            text = " ".join(str(exc).split())[:200] or type(exc).__name__
            return f"{type(exc).__name__}: {text}"
        return None

    async def close(self) -> None:
        """Stop a check still waiting for the database."""
        write, self._write = self._write, None
        if write is not None and not write.done():
            write.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await write


def _retrieve(task: asyncio.Task[None]) -> None:
    """Mark the outcome of a write seen, even one that ends after its check gave up on it."""
    if not task.cancelled():
        task.exception()
