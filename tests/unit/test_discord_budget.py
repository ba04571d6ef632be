"""The bot-wide Discord budget: every request of the session waits for it, holds its share
until its answer is back and a window more, and interaction answers go past it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from bot.ops.discord_budget import RequestBudget, counted, guard

WINDOW = 0.3


@dataclass
class SlowDiscord:
    """Answers each request only when told to; notes when each one arrived."""

    url: str = ""
    arrived: list[tuple[str, float]] = field(default_factory=list)
    answer: asyncio.Event = field(default_factory=asyncio.Event)
    answered_at: float | None = None

    def let_answer(self) -> None:
        self.answered_at = time.monotonic()
        self.answer.set()

    def paths(self) -> list[str]:
        return [path for path, _ in self.arrived]


@pytest.fixture
async def discord() -> AsyncIterator[SlowDiscord]:
    fake = SlowDiscord()

    async def handle(request: web.Request) -> web.Response:
        fake.arrived.append((request.path, time.monotonic()))
        if "/channels/" in request.path:
            await fake.answer.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    fake.answer.set()
    await runner.cleanup()


async def session_with(budget: RequestBudget) -> aiohttp.ClientSession:
    trace = aiohttp.TraceConfig()
    guard(trace, budget)
    return aiohttp.ClientSession(trace_configs=[trace])


async def until(check: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - watching what reached the fake Discord
            await asyncio.sleep(0.01)


async def test_a_request_holds_its_share_until_answered_and_a_window_more(
    discord: SlowDiscord,
) -> None:
    budget = RequestBudget(rate=2, window=WINDOW)
    async with await session_with(budget) as http:
        url = f"{discord.url}/api/v10/channels/1/messages"
        sends = [asyncio.create_task(http.post(url)) for _ in range(3)]
        await until(lambda: len(discord.arrived) == 2)
        # Longer than a window, but the first two have no answer yet: Discord may count them
        # any moment now, so the third must not go.
        await asyncio.sleep(2 * WINDOW)
        assert len(discord.arrived) == 2
        discord.let_answer()
        await until(lambda: len(discord.arrived) == 3)
        for response in await asyncio.gather(*sends):
            response.release()
    assert discord.answered_at is not None
    # Whenever Discord counted the first two, the third reached it a full window later.
    assert discord.arrived[2][1] >= discord.answered_at + WINDOW


async def test_interaction_answers_and_the_cdn_go_past_a_spent_budget(
    discord: SlowDiscord,
) -> None:
    budget = RequestBudget(rate=1, window=WINDOW)
    async with await session_with(budget) as http:
        held = asyncio.create_task(http.post(f"{discord.url}/api/v10/channels/1/messages"))
        await until(lambda: len(discord.arrived) == 1)
        for path in (
            "/api/v10/interactions/9/token/callback",
            "/api/v10/webhooks/7/token/messages/@original",
            "/attachments/1/2/frame.png",
        ):
            async with http.post(f"{discord.url}{path}") as response:
                assert response.status == 200
        assert discord.paths()[1:] == [
            "/api/v10/interactions/9/token/callback",
            "/api/v10/webhooks/7/token/messages/@original",
            "/attachments/1/2/frame.png",
        ]
        discord.let_answer()
        (await held).release()


def test_what_counts_against_the_global_limit() -> None:
    assert counted("https://discord.com/api/v10/channels/1/messages")
    assert counted("https://discord.com/api/v10/users/@me")
    assert not counted("https://discord.com/api/v10/interactions/1/tok/callback")
    assert not counted("https://discord.com/api/v10/webhooks/1/tok")
    assert not counted("https://cdn.discordapp.com/attachments/1/2/a.png")
    assert not counted("wss://gateway.discord.gg/?v=10&encoding=json")


async def test_urgent_requests_go_first_and_progress_leaves_room() -> None:
    budget = RequestBudget(rate=3, window=0.05)
    held = [await budget.take(2) for _ in range(3)]
    progress = asyncio.create_task(budget.take(3, spare=1))
    change = asyncio.create_task(budget.take(2))
    final = asyncio.create_task(budget.take(1))
    await asyncio.sleep(0)
    budget.release(held[0], sent=False)
    await asyncio.sleep(0)
    assert final.done() and not change.done()
    budget.release(held[1], sent=False)
    await asyncio.sleep(0)
    assert change.done() and not progress.done()
    # One share free is not enough for progress, which leaves one to whatever comes next.
    budget.release(final.result(), sent=False)
    await asyncio.sleep(0)
    assert not progress.done()
    budget.release(change.result(), sent=False)
    await asyncio.wait_for(progress, 1)
    assert budget.free() == 1
    budget.release(progress.result(), sent=False)
    budget.release(held[2], sent=False)
    assert budget.free() == 3


async def test_a_caller_that_stops_waiting_gives_its_share_back() -> None:
    budget = RequestBudget(rate=1, window=0.05)
    held = await budget.take(2)
    waiting = asyncio.create_task(budget.take(2))
    await asyncio.sleep(0)
    # Granted, and its caller cancelled before it could take the share.
    budget.release(held, sent=False)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert budget.free() == 1
