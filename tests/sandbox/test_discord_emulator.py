"""The real discord.py client against the local Discord emulator, over loopback sockets."""

from __future__ import annotations

import asyncio
import io
import json
import zlib
from typing import Any

import aiohttp
import discord
import pytest

from bot.endpoints import configure_discord_endpoints
from sandbox.discord import DiscordEmulator, InteractionFailed, InvocationError
from tests.harness.emulated_bot import (
    EmulatedBot,
    fetch,
    png_bytes,
    running_bot,
)

# connecting and commands -------------------------------------------------------------------


async def test_bot_connects_sees_the_guild_and_registers_its_commands() -> None:
    async with DiscordEmulator() as emu, running_bot(emu) as bot:
        guild = bot.get_guild(emu.guild_id)
        assert guild is not None
        assert {c.name for c in guild.text_channels} == {"general", "videos"}
        assert guild.me is not None and guild.me.id == emu.bot_user_id
        moderator = await guild.fetch_member(emu.moderator_id)
        assert moderator.guild_permissions.manage_guild
        assert not (await guild.fetch_member(emu.requester_id)).guild_permissions.manage_guild
        assert bot.user is not None and bot.user.id == emu.bot_user_id

        assert emu.command_sync_count == 1
        registered = {c["name"]: c for c in emu.registered_commands(emu.guild_id)}
        assert set(registered) == {
            "animate", "slow", "later", "usage", "announce", "budget", "describe", "Animate this"
        }  # fmt: skip
        options = {o["name"]: o for o in registered["animate"]["options"]}
        assert options["image"]["type"] == 11 and options["image"]["required"]
        assert [c["value"] for c in options["duration"]["choices"]] == [5, 10]
        assert (
            emu.request_count("PUT", "/applications/{application_id}/guilds/{guild_id}/commands")
            == 1
        )

        with pytest.raises(InvocationError, match="not registered"):
            await emu.invoke_command("imagine", {})
        image = await emu.upload_attachment("cat.png", png_bytes(), "image/png")
        with pytest.raises(InvocationError, match="one of"):
            await emu.invoke_command("animate", {"image": image, "prompt": "x", "resolution": "4k"})
        with pytest.raises(InvocationError, match="required"):
            await emu.invoke_command("animate", {"image": image})
        assert emu.unknown_routes == []


def test_endpoints_point_discord_py_elsewhere_and_back() -> None:
    configure_discord_endpoints("http://127.0.0.1:1/api/v10/", "ws://127.0.0.1:1/gateway")
    assert discord.http.Route("GET", "/users/@me").url == "http://127.0.0.1:1/api/v10/users/@me"
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "ws://127.0.0.1:1/gateway"
    configure_discord_endpoints(None, None)
    assert discord.http.Route.BASE == "https://discord.com/api/v10"
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "wss://gateway.discord.gg/"
    with pytest.raises(ValueError, match="ws://"):
        configure_discord_endpoints(None, "http://127.0.0.1:1/gateway")


async def test_who_and_where_decide_which_commands_can_run() -> None:
    async with DiscordEmulator() as emu, running_bot(emu):
        with pytest.raises(InvocationError, match="default permissions"):
            await emu.invoke_command("budget", {}, user_id=emu.requester_id)
        handle = await emu.invoke_command("budget", {}, user_id=emu.moderator_id)
        await handle.wait_response()
        assert handle.content == "budget: 100 credits"
        assert int(handle.payload["member"]["permissions"]) & (1 << 5)
        with pytest.raises(InvocationError, match="not registered"):
            await emu.invoke_command("usage", {}, channel_id=emu.dm_channel_id())


async def test_a_wrong_token_is_refused_like_discord() -> None:
    async with DiscordEmulator() as emu:
        configure_discord_endpoints(emu.api_base, emu.gateway_url)
        bot = EmulatedBot(emu.guild_id)
        with pytest.raises(discord.LoginFailure):
            await bot.start("not-the-token")
        await bot.close()


async def test_animate_defers_posts_the_file_follows_up_and_edits() -> None:
    async with DiscordEmulator() as emu, running_bot(emu) as bot:
        picture = png_bytes()
        image = await emu.upload_attachment("my cat.png", picture, "image/png")
        assert (image["width"], image["height"]) == (400, 320)
        assert image["filename"] == "my_cat.png"

        handle = await emu.invoke_command(
            "animate", {"image": image, "prompt": "a cat waves", "duration": 10}
        )
        assert (await handle.wait_response())["type"] == 5
        sent = handle.payload
        assert sent["attachment_size_limit"] == emu.upload_limit
        assert sent["data"]["resolved"]["attachments"][image["id"]]["size"] == len(picture)
        assert sent["member"]["user"]["id"] == str(emu.requester_id)

        video = await emu.wait_for_message(lambda m: "here is your video" in m["content"])
        content = await handle.wait_until(lambda h: h.content)
        assert content == f"Queued: {len(picture)} bytes, 480p, 10s"
        assert not handle.ephemeral and handle.followups() == []

        original, status, _ = emu.channel_messages()
        assert original["id"] == str(handle.original()["id"]) and original["type"] == 20
        assert status["attachments"][0]["filename"] == "first.png"
        thumbnail = status["embeds"][0]["thumbnail"]["url"]
        assert thumbnail == status["attachments"][0]["url"]
        assert status["embeds"][0]["description"] == "a cat waves (running)"
        assert status["edited_timestamp"] is not None
        assert emu.edit_count(int(status["id"])) == 1
        assert status["components"][0]["components"][0]["custom_id"] == "job:cancel:7"

        status_code, body = await fetch(thumbnail)
        assert status_code == 200 and body == picture
        status_code, body = await fetch(video["attachments"][0]["url"])
        assert status_code == 200 and body.startswith(b"\x00\x00\x00\x18ftyp")
        assert video["attachments"][0]["content_type"] == "video/mp4"
        forged = video["attachments"][0]["url"].replace("hm=", "hm=0")
        assert (await fetch(forged))[0] == 404

        assert emu.pinged_users(int(video["id"])) == [emu.requester_id]
        assert bot.errors == [] and emu.unknown_routes == [] and emu.crashes == []


async def test_persistent_button_reaches_the_dynamic_item_after_a_restart() -> None:
    async with DiscordEmulator() as emu:
        image = await emu.upload_attachment("cat.png", png_bytes(), "image/png")
        async with running_bot(emu):
            handle = await emu.invoke_command("animate", {"image": image, "prompt": "waves"})
            await handle.wait_until(lambda h: h.content)
        status = next(m for m in emu.channel_messages() if m["components"])

        async with running_bot(emu) as restarted:
            click = await emu.click_button(int(status["id"]), "job:cancel:7", user_id=emu.member_id)
            assert (await click.wait_response())["type"] == 7
            assert restarted.cancelled == [(7, emu.member_id)]
            after = emu.message(int(status["id"]))
            assert after is not None
            assert after["content"] == "Job 7 cancelled by Grace"
            assert after["components"] == []
            assert click.payload["message"]["id"] == status["id"]
            with pytest.raises(InvocationError, match="no component"):
                await emu.click_button(int(status["id"]), "job:cancel:7")


async def test_a_late_first_response_gets_unknown_interaction() -> None:
    async with DiscordEmulator(ack_deadline=0.3) as emu, running_bot(emu) as bot:
        bot.slow_delay = 0.6
        handle = await emu.invoke_command("slow", {})
        with pytest.raises(InteractionFailed):
            await handle.wait_response(timeout=5)
        await asyncio.wait_for(_until(lambda: bot.errors), 5)
        assert isinstance(bot.errors[0], discord.NotFound)
        assert bot.errors[0].code == 10062
        assert [r.code for r in handle.rejected] == [10062]
        assert emu.channel_messages() == []


async def test_a_followup_after_the_token_died_gets_invalid_webhook_token() -> None:
    async with DiscordEmulator(interaction_token_lifetime=1.0) as emu, running_bot(emu) as bot:
        handle = await emu.invoke_command("later", {})
        assert (await handle.wait_response())["type"] == 5
        await asyncio.sleep(1.05)  # the token dies 1 s after the interaction was created
        bot.proceed.set()
        await asyncio.wait_for(_until(lambda: bot.errors), 5)
        error = bot.errors[0]
        assert (error.status, error.code) == (401, 50027)
        assert handle.followups() == []


async def test_an_interaction_is_acknowledged_only_once() -> None:
    async with DiscordEmulator() as emu, running_bot(emu):
        handle = await emu.invoke_command("usage", {})
        await handle.wait_response()
        url = f"{emu.api_base}/interactions/{handle.id}/{handle.token}/callback"
        again = {"type": 4, "data": {"content": "again"}}
        async with aiohttp.ClientSession() as session, session.post(url, json=again) as resp:
            assert resp.status == 400
            assert resp.headers["Content-Type"] == "application/json"
            assert (await resp.json())["code"] == 40060


async def test_ephemeral_reply_is_seen_only_by_the_user() -> None:
    async with DiscordEmulator() as emu, running_bot(emu):
        with emu.subscribe() as events:
            handle = await emu.invoke_command("usage", {}, user_id=emu.member_id)
            await handle.wait_response()
            assert handle.ephemeral and handle.content == "You have 3 credits left"
            assert emu.channel_messages() == []
            assert [m["content"] for m in emu.ephemeral_messages(emu.member_id)] == [
                "You have 3 credits left"
            ]
            assert emu.ephemeral_messages(emu.requester_id) == []
            seen = [await asyncio.wait_for(events.get(), 2) for _ in range(3)]
        created = next(e for e in seen if e.type == "message_create")
        assert created.visible_to == emu.member_id


async def test_allowed_mentions_decide_who_is_pinged() -> None:
    async with DiscordEmulator() as emu, running_bot(emu):
        handle = await emu.invoke_command("announce", {"text": "@everyone look"})
        await handle.wait_response()
        guarded, unguarded = emu.channel_messages()
        assert guarded["content"] == "guarded: @everyone look"
        assert guarded["mention_everyone"] is False
        assert emu.pinged_users(int(guarded["id"])) == []
        assert unguarded["mention_everyone"] is True
        assert emu.requester_id in emu.pinged_users(int(unguarded["id"]))

        await emu.invoke_command(
            "announce", {"text": f"<@{emu.requester_id}> <@{emu.member_id}> @everyone"}
        )
        message = await emu.wait_for_message(lambda m: m["content"].startswith("guarded: <@"))
        assert [u["id"] for u in message["mentions"]] == [str(emu.requester_id)]
        assert emu.pinged_users(int(message["id"])) == [emu.requester_id]


# the channel as the bot uses it ------------------------------------------------------------


async def test_channel_rules_limits_and_unknown_routes() -> None:
    async with DiscordEmulator(upload_limit=4096) as emu, running_bot(emu) as bot:
        channel = bot.get_channel(emu.channel_id)
        assert isinstance(channel, discord.TextChannel)

        with pytest.raises(discord.HTTPException) as too_big:
            await channel.send(file=discord.File(io.BytesIO(b"x" * 5000), "big.mp4"))
        assert (too_big.value.status, too_big.value.code) == (413, 40005)

        with pytest.raises(discord.HTTPException) as too_long:
            await channel.send("x" * 2001)
        assert (too_long.value.status, too_long.value.code) == (400, 50035)

        message = await channel.send("status: queued")
        with pytest.raises(discord.NotFound) as unknown:
            await message.add_reaction("\N{WHITE HEAVY CHECK MARK}")
        assert unknown.value.code == 0
        assert len(emu.unknown_routes) == 1
        assert emu.unknown_routes[0].path.startswith(
            f"/api/v10/channels/{emu.channel_id}/messages/{message.id}/reactions/"
        )
        fetched = await channel.fetch_message(message.id)
        assert fetched.content == "status: queued"
        await message.edit(content="status: running")
        assert [m.content async for m in channel.history(limit=5)] == ["status: running"]
        await message.delete()
        assert emu.channel_messages() == []
        with pytest.raises(discord.NotFound) as gone:
            await channel.fetch_message(message.id)
        assert gone.value.code == 10008


async def test_revoked_permissions_give_403() -> None:
    async with DiscordEmulator() as emu, running_bot(emu) as bot:
        channel = bot.get_channel(emu.other_channel_id)
        assert isinstance(channel, discord.TextChannel)
        emu.deny_bot_permissions(emu.other_channel_id, "attach_files")
        await asyncio.wait_for(
            _until(lambda: not channel.permissions_for(channel.guild.me).attach_files), 5
        )
        with pytest.raises(discord.Forbidden) as no_files:
            await channel.send(file=discord.File(io.BytesIO(b"x"), "a.txt"))
        assert no_files.value.code == 50013
        await channel.send("text still works")

        emu.deny_bot_permissions(emu.other_channel_id, "attach_files", "send_messages")
        with pytest.raises(discord.Forbidden) as no_send:
            await channel.send("hello")
        assert no_send.value.code == 50013
        assert [m["content"] for m in emu.channel_messages(emu.other_channel_id)] == [
            "text still works"
        ]


async def test_direct_messages_and_closed_dms() -> None:
    async with DiscordEmulator() as emu, running_bot(emu) as bot:
        user = await bot.fetch_user(emu.requester_id)
        sent = await user.send("your video is ready")
        assert emu.message(sent.id) is not None
        emu.set_dms_open(emu.member_id, False)
        other = await bot.fetch_user(emu.member_id)
        with pytest.raises(discord.Forbidden) as closed:
            await other.send("hello")
        assert closed.value.code == 50007


async def test_the_bot_resumes_after_a_reconnect_request() -> None:
    async with DiscordEmulator() as emu, running_bot(emu) as bot:
        resumed = asyncio.Event()
        bot.add_listener(_set_on_call(resumed), "on_resumed")
        emu.request_reconnect()
        await asyncio.wait_for(resumed.wait(), 5)
        assert emu.gateway.resume_count == 1 and emu.gateway.identify_count == 1
        handle = await emu.invoke_command("usage", {})
        await handle.wait_response()


# the gateway protocol itself ---------------------------------------------------------------


class RawGateway:
    """A minimal gateway client speaking zlib-stream, to check the protocol by hand."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._inflate = zlib.decompressobj()
        self._buffer = bytearray()

    async def receive(self) -> dict[str, Any]:
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), 5)
            if msg.type == aiohttp.WSMsgType.BINARY:
                self._buffer.extend(msg.data)
                if bytes(self._buffer[-4:]) != b"\x00\x00\xff\xff":
                    continue
                text = self._inflate.decompress(bytes(self._buffer)).decode()
                self._buffer.clear()
                return dict(json.loads(text))
            if msg.type == aiohttp.WSMsgType.TEXT:
                return dict(json.loads(msg.data))
            raise ConnectionError(f"closed: {self.ws.close_code}")

    async def send(self, op: int, data: Any) -> None:
        await self.ws.send_str(json.dumps({"op": op, "d": data}))


async def test_gateway_protocol_identify_heartbeat_resume() -> None:
    async with DiscordEmulator() as emu, aiohttp.ClientSession() as http:
        url = f"{emu.gateway_url}?v=10&encoding=json&compress=zlib-stream"
        async with http.ws_connect(url) as ws:
            raw = RawGateway(ws)
            assert (await raw.receive())["op"] == 10
            await raw.send(2, {"token": "wrong", "intents": 1, "properties": {}})
            with pytest.raises(ConnectionError):
                await raw.receive()
            assert ws.close_code == 4004

        async with http.ws_connect(url) as ws:
            raw = RawGateway(ws)
            hello = await raw.receive()
            assert hello["d"]["heartbeat_interval"] > 0
            await raw.send(1, None)
            assert (await raw.receive())["op"] == 11
            await raw.send(2, {"token": emu.bot_token, "intents": 1 | 1 << 9, "properties": {}})
            ready = await raw.receive()
            assert (ready["t"], ready["s"]) == ("READY", 1)
            assert ready["d"]["resume_gateway_url"] == emu.gateway_url
            assert ready["d"]["application"]["id"] == str(emu.application_id)
            guild = await raw.receive()
            assert guild["t"] == "GUILD_CREATE" and guild["d"]["member_count"] == 5
            assert [m["user"]["id"] for m in guild["d"]["members"]] == [str(emu.bot_user_id)]
            session_id = ready["d"]["session_id"]

        headers = {"Authorization": f"Bot {emu.bot_token}"}
        api = emu.api_base
        async with http.get(f"{api}/gateway/bot", headers=headers) as resp:
            assert (await resp.json())["url"] == emu.gateway_url
        command = {"name": "usage", "description": "Your credits", "type": 1}
        put = f"{api}/applications/{emu.application_id}/commands"
        async with http.put(put, json=[command], headers=headers) as resp:
            assert resp.status == 200
        async with http.put(put, json=[command], headers={"Authorization": "Bot nope"}) as resp:
            assert resp.status == 401

        # Events while disconnected are kept for the RESUME.
        await emu.send_user_message("hello bot")
        async with http.ws_connect(url) as ws:
            raw = RawGateway(ws)
            await raw.receive()
            await raw.send(6, {"token": emu.bot_token, "session_id": session_id, "seq": 2})
            replayed = await raw.receive()
            assert (replayed["t"], replayed["s"]) == ("MESSAGE_CREATE", 3)
            assert replayed["d"]["content"] == ""  # no message content intent
            assert (await raw.receive())["t"] == "RESUMED"

            handle = await emu.invoke_command("usage", {})
            dispatched = await raw.receive()
            assert dispatched["t"] == "INTERACTION_CREATE"
            assert dispatched["d"]["data"]["name"] == "usage"

        async with http.ws_connect(url) as ws:
            raw = RawGateway(ws)
            await raw.receive()
            await raw.send(6, {"token": emu.bot_token, "session_id": "nope", "seq": 1})
            assert (await raw.receive()) == {"op": 9, "d": False}
        assert handle.payload["context"] == 0


# helpers -----------------------------------------------------------------------------------


async def _until(condition: Any) -> None:
    # Polls bot-side state that has no event of its own (errors the test bot collected).
    while not condition():  # noqa: ASYNC110
        await asyncio.sleep(0.01)


def _set_on_call(event: asyncio.Event) -> Any:
    async def listener(*_: Any) -> None:
        event.set()

    return listener
