"""The operator's endpoint in pieces: config keys, health answers, what each metric counts.

Metrics live in one registry for the whole test process, so every assertion compares a
sample before and after the action it is about.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from bot.app import SeedanceBot
from bot.config import Config, ConfigError, MetricsConfig, parse_config
from bot.ops import metrics
from bot.ops.discord_http import discord_trace, route_of
from bot.ops.health import Health
from bot.ops.probe import health_url
from bot.ops.server import serve_ops
from bot.runcomfy.client import RunComfyClient, VideoInput
from bot.runcomfy.errors import AuthError, TransportError, UnknownStateError
from bot.store.sqlite.store import SqliteStore
from sandbox.runcomfy import RunComfyEmulator
from tests.harness.ops import free_port, get

TOKEN = "rc-metrics-token-0a1b2c"


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


@contextmanager
def counting(name: str, **labels: str) -> Iterator[list[float]]:
    """Yields a list that holds the sample's increase once the block ends."""
    before = sample(name, **labels)
    seen: list[float] = []
    yield seen
    seen.append(sample(name, **labels) - before)


# -- config ----------------------------------------------------------------------------------


def test_metrics_are_off_by_default_and_loopback_when_on() -> None:
    assert Config().metrics == MetricsConfig(port=0, host="127.0.0.1")
    config = parse_config({"metrics": {"port": 9108}})
    assert (config.metrics.port, config.metrics.host) == (9108, "127.0.0.1")
    assert parse_config({"metrics": {"host": "0.0.0.0"}}).metrics.host == "0.0.0.0"
    assert parse_config({"metrics": {"host": "[::1]"}}).metrics.host == "::1"
    assert parse_config({"metrics": {"host": "Metrics.Internal."}}).metrics.host == (
        "metrics.internal"
    )
    assert parse_config({"logging": {"format": "json"}}).logging.format == "json"


@pytest.mark.parametrize(
    ("section", "error"),
    [
        ({"metrics": {"port": 70000}}, "[metrics] port must be a TCP port from 1 to 65535"),
        ({"metrics": {"port": "9108"}}, "[metrics] port must be a TCP port"),
        ({"metrics": {"port": True}}, "[metrics] port must be a TCP port"),
        ({"metrics": {"host": "http://0.0.0.0"}}, "[metrics] host must be an IP address"),
        ({"metrics": {"host": ""}}, "[metrics] host must be an IP address"),
        ({"metrics": {"host": "*.example.net"}}, "[metrics] host must be an IP address"),
        ({"metrics": {"path": "/m"}}, "[metrics] path is not a known key"),
        ({"logging": {"format": "xml"}}, '[logging] format must be one of "text", "json"'),
    ],
)
def test_bad_metrics_and_logging_keys_name_the_key(section: dict[str, object], error: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(section)
    assert str(raised.value).startswith(error)
    assert "\n" not in str(raised.value)


# -- health ----------------------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore.open(tmp_path / "bot.sqlite3") as opened:
        yield opened


async def test_health_is_the_first_trouble_gateway_then_database(store: SqliteStore) -> None:
    assert await Health(store, gateway=None).trouble() is None
    assert await Health(store, gateway=lambda: None).trouble() is None
    down = Health(store, gateway=lambda: "not connected")
    assert await down.trouble() == "gateway: not connected"


async def test_health_follows_a_locked_database_away_and_back(
    store: SqliteStore, tmp_path: Path
) -> None:
    health = Health(store, gateway=None, database_wait=0.2)
    holder = sqlite3.connect(
        tmp_path / "bot.sqlite3", isolation_level=None, check_same_thread=False
    )
    try:
        await asyncio.to_thread(holder.execute, "BEGIN IMMEDIATE")
        assert await health.trouble() == "database: no answer to a write within 0.2 s"
        # The stuck write is not doubled: the next check answers at once.
        assert await health.trouble() == "database: a write has not answered for over 0.2 s"
    finally:
        await asyncio.to_thread(holder.execute, "ROLLBACK")
        holder.close()
    async with asyncio.timeout(15):
        while True:
            if await health.trouble() is None:
                break
            await asyncio.sleep(0.05)
    assert await store.get_meta("health_checked_at") is not None
    await health.close()


async def test_health_names_a_database_that_is_gone(tmp_path: Path) -> None:
    async with SqliteStore.open(tmp_path / "gone.sqlite3") as gone:
        pass  # closed: every statement now fails
    trouble = await Health(gone, gateway=None).trouble()
    assert trouble is not None and trouble.startswith("database: ValueError")


async def test_a_bot_not_on_the_gateway_is_not_healthy(store: SqliteStore) -> None:
    async with aiohttp.ClientSession() as http:
        # As run_bot holds it: entered (the sharded client's own set-up), never connected.
        async with SeedanceBot(
            Config(), http_session=http, store=store, runcomfy_token=TOKEN
        ) as bot:
            assert bot.gateway_trouble() == "not connected"
            assert await Health(store, gateway=bot.gateway_trouble).trouble() == (
                "gateway: not connected"
            )
        assert bot.gateway_trouble() == "the client is closed"


# -- the server ------------------------------------------------------------------------------


async def test_port_zero_serves_nothing(store: SqliteStore) -> None:
    port = free_port()
    async with serve_ops(MetricsConfig(port=0), Health(store, gateway=None)):
        with pytest.raises(aiohttp.ClientConnectionError):
            await get(f"http://127.0.0.1:{port}/metrics")


async def test_a_port_in_use_stops_the_start_with_one_line(store: SqliteStore) -> None:
    port = free_port()
    config = MetricsConfig(port=port)
    async with serve_ops(config, Health(store, gateway=None)):
        status, _, text = await get(f"http://127.0.0.1:{port}/healthz")
        assert (status, text) == (200, "ok\n")
        status, _, _ = await get(f"http://127.0.0.1:{port}/")
        assert status == 404
        with pytest.raises(ConfigError, match=rf"^\[metrics\] port {port} on 127\.0\.0\.1 "):
            async with serve_ops(config, Health(store, gateway=None)):
                pass


# -- what the metrics count ------------------------------------------------------------------


def test_discord_routes_never_carry_ids_or_tokens() -> None:
    token = "aW50ZXJhY3Rpb246MTIzOnNlY3JldA"
    assert route_of(URL(f"https://discord.com/api/v10/webhooks/1/{token}/messages/@original")) == (
        "webhooks"
    )
    assert route_of(URL(f"https://discord.com/api/v10/interactions/9/{token}/callback")) == (
        "interactions"
    )
    assert route_of(URL("http://127.0.0.1:5/api/v10/channels/123/messages")) == "channels"
    assert route_of(URL("https://cdn.discordapp.com/attachments/1/2/a.png")) == "other"
    assert route_of(URL(f"https://discord.com/api/v10/{token}/x")) == "other"


async def test_discord_429s_are_counted_by_route_and_scope() -> None:
    async def limited(_request: web.Request) -> web.Response:
        headers = {"X-RateLimit-Scope": "shared", "Retry-After": "1"}
        return web.json_response({"retry_after": 1.0}, status=429, headers=headers)

    app = web.Application()
    app.router.add_post("/api/v10/channels/{id}/messages", limited)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        with (
            counting("seedance_discord_rate_limited_total", route="channels", scope="shared") as c,
            counting("seedance_discord_request_seconds_count", route="channels") as timed,
        ):
            async with aiohttp.ClientSession(trace_configs=[discord_trace()]) as http:
                url = f"http://127.0.0.1:{port}/api/v10/channels/42/messages"
                async with http.post(url, json={"content": "hi"}) as response:
                    assert response.status == 429
        assert (c, timed) == ([1.0], [1.0])
    finally:
        await runner.cleanup()


async def test_provider_calls_and_errors_by_kind() -> None:
    async with (
        RunComfyEmulator(token=TOKEN, queue_seconds=0, run_seconds=0) as emu,
        aiohttp.ClientSession() as http,
    ):
        client = RunComfyClient(http, token=TOKEN, base_url=emu.base_url)
        wrong = RunComfyClient(http, token="rc-not-the-token", base_url=emu.base_url)
        frame = emu.add_asset("f.png", b"\x89PNG")
        request = VideoInput("a kite", frame, None, "480p", 5)
        with (
            counting("seedance_provider_calls_total", call="submit") as submits,
            counting("seedance_provider_errors_total", call="submit", kind="auth") as refused,
            pytest.raises(AuthError),
        ):
            await wrong.submit(request)
        assert (submits, refused) == ([1.0], [1.0])

        emu.plan_next_job("unknown_state", state="exploded")
        sub = await client.submit(request)
        loop = asyncio.get_running_loop()
        with (
            counting("seedance_provider_errors_total", call="result", kind="unknown_state") as c,
            pytest.raises(UnknownStateError),
        ):
            async with asyncio.timeout(15):
                while True:
                    await client.poll(sub, deadline=loop.time() + 10)
                    await asyncio.sleep(0.02)
        assert c == [1.0]

    closed = free_port()
    async with aiohttp.ClientSession() as http:
        nowhere = RunComfyClient(http, token=TOKEN, base_url=f"http://127.0.0.1:{closed}")
        with (
            counting("seedance_provider_errors_total", call="probe", kind="transport") as c,
            pytest.raises(TransportError),
        ):
            await nowhere.probe()
        assert c == [1.0]


def test_the_health_command_asks_loopback_for_a_wildcard_address() -> None:
    assert health_url(MetricsConfig(port=9108)) == "http://127.0.0.1:9108/healthz"
    assert health_url(MetricsConfig(port=9108, host="0.0.0.0")) == "http://127.0.0.1:9108/healthz"
    assert health_url(MetricsConfig(port=1, host="::")) == "http://[::1]:1/healthz"
    assert health_url(MetricsConfig(port=1, host="::1")) == "http://[::1]:1/healthz"
    assert health_url(MetricsConfig(port=1, host="bot.internal")) == "http://bot.internal:1/healthz"
