"""The bot's Discord message budget: one per channel, under one for the whole bot.

Discord limits message creates and edits per channel, each in its own bucket (the number is
not documented; the commonly observed one is 5 per 5 seconds for each), and every request of
a bot to 50 a second (interaction answers aside). The emulator in `sandbox/` enforces the
same. A `ChannelPacer` spends one channel's budgets and asks the bot-wide `RequestBudget`
(`bot.ops.discord_budget`, which every request of the bot passes through) for each request,
so the bot never meets either limit:

- each job's pending edit is coalesced to its newest state (an older one is simply dropped);
- the most urgent work goes first, in the channel and across the bot (`Priority`): posts (a
  video, or a job's first status), then final states, then state changes, then progress (a
  queue position);
- progress gives way first: it is sent only while the channel and the bot have room to spare
  for more urgent work arriving meanwhile, and only after its job's own interval
  (`status_edit_interval`), like a state change;
- nothing waits in the job runner: `submit` returns at once, and a failed urgent edit is
  tried again with backoff until it shows.

A request holds its place in a channel's window from when it leaves until its answer is back,
plus the window (a little longer than Discord's, `SLACK`): Discord counts it when it arrives,
somewhere in between.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from bot.ops.discord_budget import RequestBudget, Share
from bot.tasks import TaskSet

log = logging.getLogger(__name__)

CHANNEL_RATE = 5
"""Creates and edits per channel per window (commonly observed; Discord does not document it)."""
CHANNEL_WINDOW = 5.0
SLACK = 0.25
"""Seconds added to a channel's window, for the two clocks read at slightly different moments."""
CHANNEL_SPARE = 2
"""Edits of a channel's window that progress leaves to state changes and final states."""
BOT_SPARE_SHARE = 0.2
"""The part of the bot-wide budget that progress leaves to more urgent work."""
URGENT_ATTEMPTS = 6
"""How often an urgent edit (a final state) is tried before it is given up and logged."""
STALE_AFTER = 2.5
"""Seconds a state change waits past its time before it is overdue and goes first."""
PROVEN_FOR = 120.0
"""Seconds a post that went through vouches for the channel (see `ChannelPacer.proven`)."""

Action = Callable[[], Awaitable[Any]]


class Priority(IntEnum):
    """What goes first when the budget is short; lower is more urgent."""

    OVERDUE = -1
    """A state change or final state kept waiting `STALE_AFTER` past its time: it goes first,
    so no flood of new messages keeps a status behind the truth for long."""
    POST = 0
    """A new message: a video, or a job's first status."""
    FINAL = 1
    """A job's final state (and an unknown submission), tried until it shows."""
    CHANGE = 2
    """A job's new state."""
    PROGRESS = 3
    """The same state with new details (a queue position)."""


@dataclass
class _Work:
    key: object
    priority: Priority
    action: Action
    not_before: float
    kind: str = "edit"
    """Which of the channel's buckets it spends: "post" (create) or "edit"."""
    since: float = 0.0
    """When its key's oldest change still unshown was queued (loop time)."""
    attempts: int = 0
    done: asyncio.Future[Any] | None = field(default=None, repr=False)

    @property
    def urgent(self) -> bool:
        return self.priority <= Priority.FINAL

    def standing(self, now: float) -> Priority:
        """Its priority now: a state change or final state kept waiting `STALE_AFTER` seconds
        past its time is overdue and goes first."""
        stale_at = self.stale_at()
        return Priority.OVERDUE if stale_at is not None and now >= stale_at else self.priority

    def stale_at(self) -> float | None:
        """When it will be overdue (None: never)."""
        if self.kind == "edit" and Priority.POST < self.priority <= Priority.CHANGE:
            return max(self.not_before, self.since) + STALE_AFTER
        return None


class ChannelPacer:
    """Paces one channel's posts and edits; one worker task per bucket while there is work."""

    def __init__(
        self,
        tasks: TaskSet,
        *,
        budget: RequestBudget | None = None,
        rate: int = CHANNEL_RATE,
        window: float = CHANNEL_WINDOW + SLACK,
        spare: int = CHANNEL_SPARE,
    ) -> None:
        self._tasks = tasks
        self._budget = budget if budget is not None else RequestBudget()
        self._rate = rate
        self._window = window
        self._spare = min(spare, rate - 1)
        # When each of the window's requests was answered, per bucket.
        self._sent: dict[str, collections.deque[float]] = {
            kind: collections.deque(maxlen=rate) for kind in ("post", "edit")
        }
        self._pending: dict[object, _Work] = {}
        self._wake = {kind: asyncio.Event() for kind in ("post", "edit")}
        # One worker per bucket: a slow edit (Discord holding it back) never delays a post.
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._proven_at: float | None = None
        self._posting = False
        self._outcome: asyncio.Future[None] | None = None
        """Resolved when the post on its way has gone through or failed."""

    def submit(
        self, key: object, action: Action, *, priority: Priority, not_before: float = 0.0
    ) -> None:
        """Queue ``action`` under ``key``, replacing whatever ``key`` had queued; return at once.

        The newest action runs, as urgently as the most urgent one it replaced; a final state
        queued is never replaced by a later one (there is none to show).
        """
        queued = self._pending.get(key)
        since = asyncio.get_running_loop().time()
        if queued is not None:
            if queued.priority <= Priority.FINAL < priority:
                return
            priority = min(priority, queued.priority)
            not_before = min(not_before, queued.not_before)
            since = queued.since
        self._pending[key] = _Work(key, priority, action, not_before, since=since)
        self._kick("edit")

    def drop(self, key: object) -> None:
        """Forget what ``key`` has queued, unless it is urgent (a final state is always shown)."""
        queued = self._pending.get(key)
        if queued is not None and not queued.urgent and queued.done is None:
            del self._pending[key]

    async def run(self, key: object, action: Action, *, not_before: float = 0.0) -> Any:
        """Run ``action`` urgently within the budget (not before the loop time ``not_before``,
        unless hurried) and return its result (a new message)."""
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[key] = _Work(key, Priority.POST, action, not_before, kind="post", done=done)
        self._kick("post")
        return await done

    def hurry(self, key: object, *, within: float = 0.0) -> None:
        """What ``key`` has queued may go as soon as the budget allows (``within`` seconds
        from now, when that is sooner than planned)."""
        queued = self._pending.get(key)
        if queued is None:
            return
        at = asyncio.get_running_loop().time() + within if within > 0 else 0.0
        if queued.not_before > at:
            queued.not_before = at
            self._kick(queued.kind)

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing under way."""
        return not self._pending and all(w.done() for w in self._workers.values())

    @property
    def proven(self) -> bool:
        """The channel took the bot's last post, and recently: a job shown here may start
        before its own status message is up (a channel that refuses the bot is found out by
        the post that waits for it)."""
        if self._proven_at is None:
            return False
        return asyncio.get_running_loop().time() - self._proven_at < PROVEN_FOR

    async def vouched(self) -> bool:
        """Whether the channel takes the bot's posts: it took the last one recently, or a post
        on its way now goes through (waited for)."""
        if self.proven:
            return True
        if not self._posting and not any(w.kind == "post" for w in self._pending.values()):
            return False
        if self._outcome is None:
            self._outcome = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._outcome)
        return self.proven

    def _posted(self, ok: bool) -> None:
        self._proven_at = asyncio.get_running_loop().time() if ok else None
        if self._outcome is not None:
            self._outcome.set_result(None)
            self._outcome = None

    def _kick(self, kind: str) -> None:
        self._wake[kind].set()
        worker = self._workers.get(kind)
        if worker is None or worker.done():
            self._workers[kind] = self._tasks.create(self._drain(kind), name=f"channel-{kind}s")

    def _room(self, kind: str, now: float) -> tuple[int, float]:
        """Requests this bucket may send now, and when the next place in its window frees."""
        recent = [at for at in self._sent[kind] if at + self._window > now]
        return self._rate - len(recent), (recent[0] + self._window if recent else now)

    def _next(self, kind: str, now: float) -> tuple[_Work | None, float | None]:
        """The work of this bucket to do next, or how long until some may be (None: there is
        none)."""
        queued = [w for w in self._pending.values() if w.kind == kind]
        if not queued:
            return None, None
        free, frees_at = self._room(kind, now)

        def allowed(work: _Work) -> bool:
            # Progress leaves the last places of the window to more urgent work.
            return free > (self._spare if work.priority >= Priority.PROGRESS else 0)

        ready = [w for w in queued if w.not_before <= now and allowed(w)]
        if ready:
            # Most urgent first, then the job waiting longest.
            return min(ready, key=lambda w: (w.standing(now), w.not_before)), 0.0
        soonest = min(w.not_before if allowed(w) else max(w.not_before, frees_at) for w in queued)
        return None, max(0.0, soonest - now)

    async def _drain(self, kind: str) -> None:
        loop = asyncio.get_running_loop()
        wake = self._wake[kind]
        while True:
            wake.clear()
            work, wait = self._next(kind, loop.time())
            if wait is None:
                return
            if work is None:
                # Sleep until something is due, the window frees up, or new work arrives.
                try:
                    async with asyncio.timeout(max(wait, 0.001)):
                        await wake.wait()
                except TimeoutError:
                    pass
                continue
            share = await self._turn(kind, work)
            if share is None:
                continue
            # The bot-wide turn may have taken a while: send what is most urgent now.
            work, _ = self._next(kind, loop.time())
            if work is None:
                self._budget.release(share, sent=False)
                continue
            if self._pending.get(work.key) is work:
                del self._pending[work.key]
            try:
                with self._budget.spending(share):
                    await self._do(work, loop)
            finally:
                # Counted from its answer: Discord saw it at some moment before.
                self._sent[work.kind].append(loop.time())

    async def _turn(self, kind: str, work: _Work) -> Share | None:
        """Wait for the bot-wide budget; None when more urgent work arrived meanwhile, or
        ``work`` waited long enough to go sooner (it then asks again, at its new priority)."""
        loop = asyncio.get_running_loop()
        wake = self._wake[kind]
        priority = work.standing(loop.time())
        spare = round(self._budget.rate * BOT_SPARE_SHARE) if priority >= Priority.PROGRESS else 0
        stale_at = work.stale_at() if priority == work.priority else None
        take = asyncio.ensure_future(self._budget.take(priority, spare=spare))
        try:
            while True:
                wake.clear()
                woke = asyncio.ensure_future(wake.wait())
                timeout = None if stale_at is None else max(0.0, stale_at - loop.time())
                try:
                    await asyncio.wait(
                        {take, woke}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    woke.cancel()
                if take.done():
                    return take.result()
                now = loop.time()
                if stale_at is not None and now >= stale_at:
                    return None
                best, _ = self._next(kind, now)
                if best is not None and best.standing(now) < priority:
                    return None
        finally:
            take.cancel()

    async def _do(self, work: _Work, loop: asyncio.AbstractEventLoop) -> None:
        if work.kind == "post":
            self._posting = True
        try:
            result = await work.action()
        except Exception as exc:
            if work.kind == "post":
                self._posted(False)
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
        finally:
            if work.kind == "post":
                self._posting = False
        if work.kind == "post":
            self._posted(True)
        if work.done is not None and not work.done.done():
            work.done.set_result(result)
