"""What an independent client notices: gateway framing, callback answers, signed URLs, ids."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from sandbox.discord import DiscordEmulator
from tests.harness.emulated_bot import fetch, png_bytes, running_bot

zstandard = pytest.importorskip("zstandard")


async def _receive_text(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), 5)
    if msg.type != aiohttp.WSMsgType.TEXT:
        raise ConnectionError(f"closed: {ws.close_code}")
    return dict(json.loads(msg.data))


async def test_binary_json_frames_are_accepted_and_big_payloads_close_4002() -> None:
    async with DiscordEmulator() as emu, aiohttp.ClientSession() as http:
        url = f"{emu.gateway_url}?v=10&encoding=json"
        async with http.ws_connect(url) as ws:
            assert (await _receive_text(ws))["op"] == 10
            identify = {"op": 2, "d": {"token": emu.bot_token, "intents": 1, "properties": {}}}
            await ws.send_bytes(json.dumps(identify).encode())
            assert (await _receive_text(ws))["t"] == "READY"
            await ws.send_bytes(json.dumps({"op": 1, "d": 1}).encode())
            while (await _receive_text(ws))["op"] != 11:
                pass
            padding = "x" * 4100
            await ws.send_str(json.dumps({"op": 3, "d": {"status": "online", "pad": padding}}))
            with pytest.raises(ConnectionError):
                while True:
                    await _receive_text(ws)
            assert ws.close_code == 4002


async def test_zstd_stream_compresses_every_message_in_one_context() -> None:
    async with DiscordEmulator() as emu, aiohttp.ClientSession() as http:
        url = f"{emu.gateway_url}?v=10&encoding=json&compress=zstd-stream"
        inflate = zstandard.ZstdDecompressor().decompressobj()
        async with http.ws_connect(url) as ws:

            async def receive() -> dict[str, Any]:
                msg = await asyncio.wait_for(ws.receive(), 5)
                assert msg.type == aiohttp.WSMsgType.BINARY
                return dict(json.loads(inflate.decompress(msg.data)))

            assert (await receive())["op"] == 10
            identify = {"op": 2, "d": {"token": emu.bot_token, "intents": 1, "properties": {}}}
            await ws.send_str(json.dumps(identify))
            assert (await receive())["t"] == "READY"
            assert (await receive())["t"] == "GUILD_CREATE"


async def test_with_response_on_a_deferral_carries_no_message() -> None:
    async with DiscordEmulator() as emu, running_bot(emu):
        handle = await emu.invoke_command("usage", {})
        await handle.wait_response()
        # A second interaction, answered by hand with a deferral.
        later = await emu.invoke_command("later", {})
        await later.wait_response()
        record = emu.service.interactions[later.id]
        record.acknowledged_at = None
        url = f"{emu.api_base}/interactions/{later.id}/{later.token}/callback?with_response=true"
        async with aiohttp.ClientSession() as http, http.post(url, json={"type": 5}) as r:
            body = await r.json()
        assert body["resource"] == {"type": 5}
        assert body["interaction"]["response_message_loading"] is True


async def test_attachment_urls_expire_and_fetching_again_signs_them_afresh() -> None:
    async with DiscordEmulator() as emu, aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bot {emu.bot_token}"}
        form = aiohttp.FormData()
        form.add_field("payload_json", json.dumps({"content": "pic"}))
        form.add_field("files[0]", png_bytes(), filename="pic.png", content_type="image/png")
        path = f"{emu.api_base}/channels/{emu.channel_id}/messages"
        async with http.post(path, data=form, headers=headers) as r:
            posted = await r.json()
        old_url = posted["attachments"][0]["url"]
        assert {"ex=", "is=", "hm="} <= {p[:3] for p in old_url.split("?")[1].split("&")}
        assert (await fetch(old_url))[0] == 200

        emu.advance_clock(24 * 3600 + 1)
        assert (await fetch(old_url))[0] == 404
        async with http.get(f"{path}/{posted['id']}", headers=headers) as r:
            again = await r.json()
        new_url = again["attachments"][0]["url"]
        assert new_url != old_url
        status, body = await fetch(new_url)
        assert status == 200 and body == png_bytes()


async def test_components_come_back_numbered() -> None:
    async with DiscordEmulator() as emu, aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bot {emu.bot_token}"}
        row = {
            "type": 1,
            "components": [
                {"type": 2, "style": 1, "custom_id": "a", "label": "A"},
                {"type": 2, "style": 4, "custom_id": "b", "label": "B", "id": 7},
            ],
        }
        path = f"{emu.api_base}/channels/{emu.channel_id}/messages"
        body = {"content": "pick", "components": [row]}
        async with http.post(path, json=body, headers=headers) as r:
            posted = await r.json()
        got = posted["components"][0]
        assert [got["id"], got["components"][0]["id"], got["components"][1]["id"]] == [1, 2, 7]


async def test_an_enforced_nonce_returns_the_earlier_message_instead_of_a_second() -> None:
    async with DiscordEmulator() as emu, aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bot {emu.bot_token}"}
        url = f"{emu.api_base}/channels/{emu.channel_id}/messages"
        body = {"content": "once", "nonce": "status-1", "enforce_nonce": True}
        async with http.post(url, json=body, headers=headers) as r:
            first = await r.json()
        async with http.post(url, json=body, headers=headers) as r:
            again = await r.json()
        assert again["id"] == first["id"]
        # Without enforce_nonce the nonce is only echoed: a second message is made.
        async with http.post(url, json={**body, "enforce_nonce": False}, headers=headers) as r:
            other = await r.json()
        assert other["id"] != first["id"]
        async with http.post(url, json={**body, "nonce": "n" * 26}, headers=headers) as r:
            assert r.status == 400
            assert "nonce" in (await r.json())["errors"]
        assert len(emu.channel_messages()) == 2


async def test_a_lost_answer_does_the_work_and_drops_the_connection() -> None:
    async with DiscordEmulator() as emu, aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bot {emu.bot_token}"}
        url = f"{emu.api_base}/channels/{emu.channel_id}/messages"
        emu.lose_answers("POST", "/channels/{channel_id}/messages")
        with pytest.raises(aiohttp.ClientError):
            async with http.post(url, json={"content": "lost"}, headers=headers) as r:
                await r.read()
        assert [m["content"] for m in emu.channel_messages()] == ["lost"]
        async with http.post(url, json={"content": "heard"}, headers=headers) as r:
            assert r.status == 200
