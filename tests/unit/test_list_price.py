"""The model's list price: read from the provider when it says, quietly absent otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.quota import DEFAULT_COSTS
from bot.runcomfy.client import MODEL_ID, RunComfyClient
from bot.runcomfy.pricing import ListPrice, parse_list_price, usd_per_credit
from sandbox.runcomfy import RunComfyEmulator

TOKEN = "rc-price-token"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_the_emulated_provider_publishes_a_price_per_second(
    http: aiohttp.ClientSession,
) -> None:
    async with RunComfyEmulator(token=TOKEN, queue_seconds=0, run_seconds=0) as emu:
        price = await RunComfyClient(http, token=TOKEN, base_url=emu.base_url).list_price()
    assert price is not None and price.unit == "second"
    # 5 s at 480p: what the provider's result then charges (include_cost).
    assert price.clip_usd(5) == pytest.approx(0.0875, abs=1e-3)
    estimate = usd_per_credit(price, DEFAULT_COSTS)
    assert estimate is not None
    assert estimate[1:] == ("480p", 5) and estimate[0] == pytest.approx(0.0875, abs=1e-3)


@pytest.mark.parametrize(
    "answer",
    [
        web.json_response({"error_code": 404001, "error_message": "unknown model"}, status=404),
        web.json_response({"model_id": MODEL_ID}),  # no price in it
        web.json_response({"base_price_usd": "free", "price_unit": "second"}),
        web.Response(text="<html>maintenance</html>", status=503),
    ],
)
async def test_a_provider_without_a_usable_price_gives_none_without_raising(
    http: aiohttp.ClientSession, aiohttp_answer: Any, answer: web.StreamResponse
) -> None:
    base_url = await aiohttp_answer(answer)
    assert await RunComfyClient(http, token=TOKEN, base_url=base_url).list_price() is None


@pytest.fixture
async def aiohttp_answer() -> AsyncIterator[Any]:
    """Start a server that gives one fixed answer to the model route; returns its base URL."""
    runners: list[web.AppRunner] = []

    async def start(answer: web.StreamResponse) -> str:
        async def model(_request: web.Request) -> web.StreamResponse:
            return answer

        app = web.Application()
        app.router.add_get(f"/v1/models/{MODEL_ID}", model)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


def test_prices_per_video_and_unknown_units() -> None:
    per_video = parse_list_price({"base_price_usd": 0.2, "price_unit": "Output"})
    assert per_video == ListPrice(0.2, "output")
    estimate = usd_per_credit(per_video, DEFAULT_COSTS)
    assert estimate == (pytest.approx(0.2), "480p", 5)
    tokens = parse_list_price({"base_price_usd": 1.8, "price_unit": "million_tokens"})
    assert tokens is not None and usd_per_credit(tokens, DEFAULT_COSTS) is None
    assert parse_list_price({"base_price_usd": -1, "price_unit": "second"}) is None
    assert parse_list_price({"base_price_usd": True, "price_unit": "second"}) is None
    assert parse_list_price(["not", "a", "mapping"]) is None
