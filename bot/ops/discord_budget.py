"""Discord's global limit on the bot's requests: one budget that every REST request spends.

Discord lets a bot send 50 requests a second (interaction answers aside) and counts each one
when it arrives. The bot cannot see when that is: a request may leave a busy event loop late,
wait for a connection, or cross a slow network. So a request holds its share of the budget
from the moment it is allowed until its answer is back, and one window longer. Whenever it
reached Discord in that stretch, it cannot share a window of Discord's with `rate` later ones:
the next request the freed share allows starts a full window after this one's answer, so
after its arrival. No 429 from the global limit, however the requests are delayed on the way.

`guard` puts the budget in front of every request of discord.py's session (an aiohttp trace,
given to the client as ``http_trace``), so nothing escapes it: the moderators' log, lookups,
discord.py's own retries. The channel pacers (`cogs.animate.pacer`) ask it first, most urgent
first, and the request they then send spends the share they were given (`spending`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import heapq
import itertools
import re
from collections.abc import Iterator
from types import SimpleNamespace

import aiohttp

GLOBAL_RATE = 50
"""Discord's global limit: requests per second per bot."""
WINDOW = 1.0
SLACK = 0.005
"""Seconds added to the window, for Discord's timestamps' rounding. No more is needed: a
share's window counts from the answer, read after Discord counted the request, to the next
grant, read before the next request leaves."""
UNPACED = 1
"""The priority of a request no pacer was granted (the moderators' log, a lookup, a retry):
after new messages, with final states (lower is more urgent)."""

_API = re.compile(r"/api/v\d+/")
# Interaction answers and their webhooks are not bound to the global limit.
_EXEMPT = re.compile(r"/api/v\d+/(interactions|webhooks)/")


class Share:
    """One request's part of the budget, from its grant until it is given back."""

    __slots__ = ("used",)

    def __init__(self) -> None:
        self.used = False
        """A request was sent on it (it is then given back when the answer is in)."""


_GRANTED: contextvars.ContextVar[Share | None] = contextvars.ContextVar(
    "discord_share", default=None
)


class RequestBudget:
    """At most ``rate`` requests allowed and not yet a ``window`` past their answer.

    Granted most urgent first (lower ``priority`` first, then in order of asking).
    """

    def __init__(self, rate: int = GLOBAL_RATE, window: float = WINDOW + SLACK) -> None:
        if rate < 1:
            raise ValueError("the budget needs room for at least one request")
        self.rate = rate
        self.window = window
        self._busy = 0
        """Shares granted and not given back."""
        self._cooling: collections.deque[float] = collections.deque()
        """When each share given back after a request comes free again, soonest first."""
        self._waiting: list[tuple[int, int, int, asyncio.Future[Share]]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None

    def free(self, now: float | None = None) -> int:
        """How many requests could be allowed right now."""
        if now is None:
            now = asyncio.get_running_loop().time()
        while self._cooling and self._cooling[0] <= now:
            self._cooling.popleft()
        return self.rate - self._busy - len(self._cooling)

    async def take(self, priority: int, *, spare: int = 0) -> Share:
        """A share for one request at ``priority``, once the budget allows it.

        ``spare``: wait until that many shares stay free besides this one, so that work of
        this kind gives way to more urgent work arriving meanwhile.
        """
        loop = asyncio.get_running_loop()
        if not self._waiting and self.free(loop.time()) > spare:
            return self._grant_one()
        turn: asyncio.Future[Share] = loop.create_future()
        heapq.heappush(self._waiting, (priority, next(self._order), spare, turn))
        self._grant(loop)
        try:
            return await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                # Granted just as the caller gave up: hand it straight back.
                self.release(turn.result(), sent=False)
            raise

    def release(self, share: Share, *, sent: bool) -> None:
        """Give a share back: a window after now when a request was sent on it, else now."""
        loop = asyncio.get_running_loop()
        self._busy -= 1
        if sent:
            self._cooling.append(loop.time() + self.window)
        self._grant(loop)

    @contextlib.contextmanager
    def spending(self, share: Share) -> Iterator[None]:
        """The first request sent inside the block spends ``share`` (and gives it back when
        its answer is in). If none went through the guard, the block is taken to have sent
        one: the share is given back as used when the block ends."""
        token = _GRANTED.set(share)
        try:
            yield
        finally:
            _GRANTED.reset(token)
            if not share.used:
                share.used = True
                self.release(share, sent=True)

    async def for_request(self) -> Share:
        """The share the next request goes out on: the one granted to this task, else a new one."""
        share = _GRANTED.get()
        if share is None or share.used:
            share = await self.take(UNPACED)
        share.used = True
        return share

    def _grant_one(self) -> Share:
        self._busy += 1
        return Share()

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None or not self._waiting or not self._cooling:
            return  # nothing waits, or only an answer can free a share
        self._timer = loop.call_at(self._cooling[0], self._wake, loop)

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._grant(loop)

    def _grant(self, loop: asyncio.AbstractEventLoop) -> None:
        free = self.free(loop.time())
        while self._waiting:
            _, _, spare, turn = self._waiting[0]
            if turn.done():
                heapq.heappop(self._waiting)  # its caller stopped waiting
                continue
            if free <= spare:
                break
            heapq.heappop(self._waiting)
            turn.set_result(self._grant_one())
            free -= 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._arm(loop)


def counted(url: str) -> bool:
    """Whether a request to ``url`` counts against Discord's global limit: the API's routes,
    interaction answers and webhooks aside (the CDN and the gateway are no API routes)."""
    return _API.search(url) is not None and _EXEMPT.search(url) is None


def guard(trace: aiohttp.TraceConfig, budget: RequestBudget) -> None:
    """Make every counted request of the session ``trace`` is given to wait for ``budget``."""

    async def started(
        _session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        if counted(str(params.url)):
            context.budget_share = await budget.for_request()

    def ended(context: SimpleNamespace) -> None:
        share = getattr(context, "budget_share", None)
        if share is not None:
            context.budget_share = None
            budget.release(share, sent=True)

    async def answered(
        _session: aiohttp.ClientSession, context: SimpleNamespace, _params: object
    ) -> None:
        ended(context)

    # First, so the other callbacks (latency metrics) time the request, not its wait.
    trace.on_request_start.insert(0, started)
    trace.on_request_end.append(answered)
    trace.on_request_exception.append(answered)
