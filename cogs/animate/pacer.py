"""The bot's Discord message budget: one per channel, and one for the whole bot.

Discord limits message creates and edits per channel, each in its own bucket (the number is
not documented; the commonly observed one is 5 per 5 seconds for each), and every request of
a bot to 50 a second (interaction answers aside). The emulator in `sandbox/` enforces the
same. A `ChannelPacer` spends one channel's budgets and asks the bot-wide `RequestBudget`
for each request, so the bot never meets either limit:

- each job's pending edit is coalesced to its newest state (an older one is simply dropped);
- the most urgent work goes first, in the channel and across the bot (`Priority`): posts (a
  video, or a job's first status, which its submission waits for), then final states, then
  state changes, then progress (a queue position);
- a progress edit waits for its job's own minimum interval too (`status_edit_interval`);
- nothing waits in the job runner: `submit` returns at once, and a failed urgent edit is
  tried again with backoff until it shows.

Every window is counted a little longer than Discord's (`SLACK`): requests reach Discord a
little earlier or later than they leave, and Discord counts them when they arrive.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from bot.tasks import TaskSet

log = logging.getLogger(__name__)

CHANNEL_RATE = 5
"""Creates and edits per channel per window (commonly observed; Discord does not document it)."""
CHANNEL_WINDOW = 5.0
GLOBAL_RATE = 50
"""Discord's global limit: requests per second per bot."""
GLOBAL_HEADROOM = 5
"""Requests a second left to what does not go through a pacer (the moderators' log, lookups)."""
SLACK = 0.25
"""Seconds added to a channel's window, for requests that reach Discord sooner than their turn."""
GLOBAL_SLACK = 0.1
"""The same for the bot-wide window of one second."""
URGENT_ATTEMPTS = 6
"""How often an urgent edit (a final state) is tried before it is given up and logged."""

Action = Callable[[], Awaitable[Any]]


class Priority(IntEnum):
    """What goes first when the budget is short; lower is more urgent."""

    POST = 0
    """A new message: a video, or a job's first status (its submission waits for it)."""
    FINAL = 1
    """A job's final state (and an unknown submission), tried until it shows."""
    CHANGE = 2
    """A job's new state."""
    PROGRESS = 3
    """The same state with new details (a queue position)."""


class RequestBudget:
    """The bot's requests per window across every channel, granted most urgent first."""

    def __init__(
        self, rate: int = GLOBAL_RATE - GLOBAL_HEADROOM, window: float = 1.0 + GLOBAL_SLACK
    ) -> None:
        self._rate = rate
        self._window = window
        self._sent: collections.deque[float] = collections.deque(maxlen=rate)
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None

    def _wait(self, now: float) -> float:
        if len(self._sent) < self._rate:
            return 0.0
        return max(0.0, self._sent[0] + self._window - now)

    async def take(self, priority: int) -> None:
        """Return when a request at ``priority`` may be sent now (counting it as sent)."""
        loop = asyncio.get_running_loop()
        if not self._waiting and self._wait(loop.time()) == 0:
            self._sent.append(loop.time())
            return
        turn: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._waiting, (priority, next(self._order), turn))
        self._arm(loop)
        await turn

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is None and self._waiting:
            self._timer = loop.call_later(self._wait(loop.time()), self._grant, loop)

    def _grant(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        while self._waiting and self._wait(now) == 0:
            _, _, turn = heapq.heappop(self._waiting)
            if turn.done():
                continue  # its caller stopped waiting
            self._sent.append(now)
            turn.set_result(None)
        self._arm(loop)


@dataclass
class _Work:
    key: object
    priority: Priority
    action: Action
    not_before: float
    kind: str = "edit"
    """Which of the channel's buckets it spends: "post" (create) or "edit"."""
    attempts: int = 0
    done: asyncio.Future[Any] | None = field(default=None, repr=False)

    @property
    def urgent(self) -> bool:
        return self.priority <= Priority.FINAL


class ChannelPacer:
    """Paces one channel's posts and edits; one worker task per bucket while there is work."""

    def __init__(
        self,
        tasks: TaskSet,
        *,
        budget: RequestBudget | None = None,
        rate: int = CHANNEL_RATE,
        window: float = CHANNEL_WINDOW + SLACK,
    ) -> None:
        self._tasks = tasks
        self._budget = budget if budget is not None else RequestBudget()
        self._rate = rate
        self._window = window
        self._sent: dict[str, collections.deque[float]] = {
            kind: collections.deque(maxlen=rate) for kind in ("post", "edit")
        }
        self._pending: dict[object, _Work] = {}
        self._wake = {kind: asyncio.Event() for kind in ("post", "edit")}
        # One worker per bucket: a slow edit (Discord holding it back) never delays a post.
        self._workers: dict[str, asyncio.Task[None]] = {}

    def submit(
        self, key: object, action: Action, *, priority: Priority, not_before: float = 0.0
    ) -> None:
        """Queue ``action`` under ``key``, replacing whatever ``key`` had queued; return at once.

        The newest action runs, as urgently as the most urgent one it replaced; a final state
        queued is never replaced by a later one (there is none to show).
        """
        queued = self._pending.get(key)
        if queued is not None:
            if queued.priority <= Priority.FINAL < priority:
                return
            priority = min(priority, queued.priority)
            not_before = min(not_before, queued.not_before)
        self._pending[key] = _Work(key, priority, action, not_before)
        self._kick("edit")

    async def run(self, key: object, action: Action) -> Any:
        """Run ``action`` urgently within the budget and return its result (a new message)."""
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[key] = _Work(key, Priority.POST, action, 0.0, kind="post", done=done)
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
            # Most urgent first, then the job waiting longest.
            return min(ready, key=lambda w: (w.priority, w.not_before)), 0.0
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
            if not await self._turn(kind, work.priority):
                continue
            # The bot-wide turn may have taken a while: send what is most urgent now.
            work, _ = self._next(kind, loop.time())
            if work is None:
                continue
            if self._pending.get(work.key) is work:
                del self._pending[work.key]
            self._sent[work.kind].append(loop.time())
            await self._do(work, loop)

    async def _turn(self, kind: str, priority: Priority) -> bool:
        """Wait for the bot-wide budget; False when more urgent work arrived meanwhile (it
        then asks again, at its own priority)."""
        wake = self._wake[kind]
        take = asyncio.ensure_future(self._budget.take(priority))
        try:
            while True:
                wake.clear()
                woke = asyncio.ensure_future(wake.wait())
                try:
                    await asyncio.wait({take, woke}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    woke.cancel()
                if take.done():
                    take.result()
                    return True
                now = asyncio.get_running_loop().time()
                best, _ = self._next(kind, now)
                if best is not None and best.priority < priority:
                    return False
        finally:
            take.cancel()

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
