"""Rate limits as a client meets them: headers, 429s on buckets and globally, and 30046."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import discord

from sandbox.discord import DiscordEmulator
from tests.harness.emulated_bot import running_bot


class Api:
    """A bare HTTP client with the bot's token."""

    def __init__(self, emu: DiscordEmulator, http: aiohttp.ClientSession) -> None:
        self.emu = emu
        self.http = http
        self.headers = {"Authorization": f"Bot {emu.bot_token}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, Any]:
        url = self.emu.api_base + path
        async with self.http.request(method, url, json=body, headers=self.headers) as r:
            data = await r.json() if r.content_type == "application/json" else None
            return r.status, data, r.headers


async def test_every_answer_carries_rate_limit_headers() -> None:
    async with DiscordEmulator() as emu, aiohttp.ClientSession() as http:
        status, _, headers = await Api(emu, http).call("GET", "/users/@me")
        assert status == 200
        for name in ("Limit", "Remaining", "Reset", "Reset-After", "Bucket"):
            assert f"X-RateLimit-{name}" in headers
        assert headers["Via"]
        assert "X-RateLimit-Scope" not in headers  # only on 429s, as documented


async def test_a_channel_bucket_refuses_the_sixth_message_in_five_seconds() -> None:
    async with DiscordEmulator() as emu, aiohttp.ClientSession() as http:
        api = Api(emu, http)
        path = f"/channels/{emu.channel_id}/messages"
        answers = [await api.call("POST", path, {"content": f"m{i}"}) for i in range(6)]
        assert [a[0] for a in answers] == [200] * 5 + [429]
        assert answers[4][2]["X-RateLimit-Remaining"] == "0"
        _status, body, headers = answers[5]
        assert body["global"] is False and 0 < body["retry_after"] <= 5
        assert headers["X-RateLimit-Scope"] == "user" and headers["Via"]
        assert int(headers["Retry-After"]) >= 1
        assert len(emu.channel_messages()) == 5
        # Another channel is another bucket (the channel is the major parameter).
        other = f"/channels/{emu.other_channel_id}/messages"
        assert (await api.call("POST", other, {"content": "x"}))[0] == 200
        assert [h.route for h in emu.rate_limited] == ["/channels/{channel_id}/messages"]
        assert emu.rate_limit_count == 1

        emu.advance_clock(5.1)
        assert (await api.call("POST", path, {"content": "later"}))[0] == 200


async def test_the_global_limit_is_50_a_second_and_spares_interaction_callbacks() -> None:
    async with DiscordEmulator() as emu, running_bot(emu), aiohttp.ClientSession() as http:
        api = Api(emu, http)
        answers = await asyncio.gather(*(api.call("GET", "/users/@me") for _ in range(60)))
        refused = [a for a in answers if a[0] == 429]
        assert refused, "50 a second per bot token"
        _status, body, headers = refused[0]
        assert body["global"] is True
        assert headers["X-RateLimit-Global"] == "true"
        assert headers["X-RateLimit-Scope"] == "global"
        # The bot's interaction callback is not bound to the global limit.
        handle = await emu.invoke_command("usage", {})
        await handle.wait_response()
        assert handle.content == "You have 3 credits left"


async def test_discord_py_waits_out_a_full_bucket_by_itself() -> None:
    async with DiscordEmulator() as emu, running_bot(emu) as bot:
        channel = bot.get_channel(emu.channel_id)
        assert isinstance(channel, discord.TextChannel)
        started = time.monotonic()
        for i in range(6):
            await channel.send(f"status {i}")
        assert len(emu.channel_messages()) == 6
        assert time.monotonic() - started > 3  # the sixth waited for the bucket to reset


async def test_edits_to_hour_old_messages_are_capped_with_30046() -> None:
    async with DiscordEmulator() as emu, aiohttp.ClientSession() as http:
        api = Api(emu, http)
        _status, posted, _ = await api.call(
            "POST", f"/channels/{emu.channel_id}/messages", {"content": "queued"}
        )
        path = f"/channels/{emu.channel_id}/messages/{posted['id']}"
        for i in range(5):  # young messages: only the ordinary bucket applies
            assert (await api.call("PATCH", path, {"content": f"young {i}"}))[0] == 200
        emu.advance_clock(3601)
        statuses = [(await api.call("PATCH", path, {"content": f"old {i}"})) for i in range(4)]
        assert [s[0] for s in statuses] == [200, 200, 200, 429]
        _status, body, headers = statuses[3]
        assert body["code"] == 30046 and body["retry_after"] > 0
        assert headers["Via"]
        assert emu.rate_limited[-1].route == "/channels/{channel_id}/messages/{message_id}"


async def test_limits_can_be_switched_off() -> None:
    async with DiscordEmulator(rate_limits=False) as emu, aiohttp.ClientSession() as http:
        api = Api(emu, http)
        path = f"/channels/{emu.channel_id}/messages"
        answers = [await api.call("POST", path, {"content": f"m{i}"}) for i in range(8)]
        assert {a[0] for a in answers} == {200}
        assert "X-RateLimit-Bucket" in answers[0][2]
        assert emu.rate_limited == []
