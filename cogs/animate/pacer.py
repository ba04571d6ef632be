"""One channel's message budget, shared by every job shown there.

Discord limits message creates and edits per channel, each in its own bucket; the number is
not documented, and the commonly observed one is 5 per 5 seconds for each (the emulator in
`sandbox/` enforces the same). A `ChannelPacer` spends those budgets so the bot never meets
the limit:

- each job's pending edit is coalesced to its newest state (an older one is simply dropped);
- urgent work (a job's final state, a video post, a repost) goes before progress edits;
- a progress edit waits for its job's own minimum interval too (`status_edit_interval`);
- nothing waits in the job runner: `submit` returns at once, and a failed urgent edit is
  tried again with backoff until it shows.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.tasks import TaskSet

log = logging.getLogger(__name__)

CHANNEL_RATE = 5
"""Creates and edits per channel per window (commonly observed; Discord does not document it)."""
CHANNEL_WINDOW = 5.0
URGENT_ATTEMPTS = 6
"""How often an urgent edit (a final state) is tried before it is given up and logged."""

Action = Callable[[], Awaitable[Any]]


@dataclass
class _Work:
    key: object
    urgent: bool
    action: Action
    not_before: float
    kind: str = "edit"
    """Which of the channel's buckets it spends: "post" (create) or "edit"."""
    attempts: int = 0
    done: asyncio.Future[Any] | None = field(default=None, repr=False)


class ChannelPacer:
    """Paces one channel's posts and edits; one worker task while there is work."""

    def __init__(
        self, tasks: TaskSet, *, rate: int = CHANNEL_RATE, window: float = CHANNEL_WINDOW
    ) -> None:
        self._tasks = tasks
        self._rate = rate
        self._window = window
        self._sent: dict[str, collections.deque[float]] = {
            kind: collections.deque(maxlen=rate) for kind in ("post", "edit")
        }
        self._pending: dict[object, _Work] = {}
        self._wake = {kind: asyncio.Event() for kind in ("post", "edit")}
        # One worker per bucket: a slow edit (Discord holding it back) never delays a post.
        self._workers: dict[str, asyncio.Task[None]] = {}

    def submit(self, key: object, action: Action, *, urgent: bool, not_before: float = 0.0) -> None:
        """Queue ``action`` under ``key``, replacing whatever ``key`` had queued; return at once.

        An urgent action is never replaced by a non-urgent one.
        """
        queued = self._pending.get(key)
        if queued is not None and queued.urgent and not urgent:
            return
        self._pending[key] = _Work(key, urgent, action, not_before)
        self._kick("edit")

    async def run(self, key: object, action: Action) -> Any:
        """Run ``action`` urgently within the budget and return its result (a video post)."""
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[key] = _Work(key, True, action, 0.0, kind="post", done=done)
        self._kick("post")
        return await done

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing under way."""
        return not self._pending and all(w.done() for w in self._workers.values())

    def _kick(self, kind: str) -> None:
        self._wake[kind].set()
        worker = self._workers.get(kind)
        if worker is None or worker.done():
            self._workers[kind] = self._tasks.create(self._drain(kind), name=f"channel-{kind}s")

    def _next(self, kind: str, now: float) -> tuple[_Work | None, float | None]:
        """The work of this bucket to do next, or how long until some is due and affordable
        (None: there is none)."""
        queued = [w for w in self._pending.values() if w.kind == kind]
        if not queued:
            return None, None
        budget = self._budget_wait(kind, now)
        ready = [w for w in queued if w.not_before <= now]
        if ready and budget == 0:
            # Urgent first, then the job waiting longest.
            return min(ready, key=lambda w: (not w.urgent, w.not_before)), 0.0
        return None, max(budget, min(w.not_before for w in queued) - now)

    def _budget_wait(self, kind: str, now: float) -> float:
        sent = self._sent[kind]
        if len(sent) < self._rate:
            return 0.0
        return max(0.0, sent[0] + self._window - now)

    async def _drain(self, kind: str) -> None:
        loop = asyncio.get_running_loop()
        wake = self._wake[kind]
        while True:
            wake.clear()
            work, wait = self._next(kind, loop.time())
            if wait is None:
                return
            if work is None:
                # Sleep until something is due, the budget frees up, or new work arrives.
                try:
                    async with asyncio.timeout(max(wait, 0.001)):
                        await wake.wait()
                except TimeoutError:
                    pass
                continue
            if self._pending.get(work.key) is work:
                del self._pending[work.key]
            self._sent[work.kind].append(loop.time())
            await self._do(work, loop)

    async def _do(self, work: _Work, loop: asyncio.AbstractEventLoop) -> None:
        try:
            result = await work.action()
        except Exception as exc:
            if work.done is not None:
                # Its caller may have been cancelled meanwhile (its job stopped).
                if not work.done.done():
                    work.done.set_exception(exc)
                return
            work.attempts += 1
            if work.urgent and work.attempts < URGENT_ATTEMPTS and work.key not in self._pending:
                backoff = min(30.0, 2.0**work.attempts)
                log.warning("channel edit failed (%r); trying again in %.0f s", exc, backoff)
                work.not_before = loop.time() + backoff
                self._pending[work.key] = work
            else:
                log.warning("channel edit failed and was given up: %r", exc)
            return
        if work.done is not None and not work.done.done():
            work.done.set_result(result)
