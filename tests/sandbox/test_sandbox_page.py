"""The sandbox page's assets and the /sandbox API it drives, with the real bot behind it."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp

from sandbox.discord import DiscordEmulator
from tests.harness.emulated_bot import png_bytes, running_bot
from tests.sandbox.page_client import page_session


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        assert response.status == 200
        return await response.json()


def invoke_form(command: str, options: dict[str, Any], user_id: int, **files: bytes) -> Any:
    form = aiohttp.FormData()
    form.add_field("command", command)
    form.add_field("user_id", str(user_id))
    form.add_field("options", json.dumps(options))
    for name, data in files.items():
        form.add_field(f"file:{name}", data, filename=f"{name}.png", content_type="image/png")
    return form


async def test_the_page_and_its_assets_are_served_without_external_urls() -> None:
    async with DiscordEmulator() as emu, page_session(emu) as http:
        async with http.get(emu.base_url + "/") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/html")
            page = await response.text()
        assets = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert sorted(assets) == ["/static/app.js", "/static/forms.js", "/static/style.css"]
        for asset in assets:
            async with http.get(emu.base_url + asset) as response:
                assert response.status == 200
                text = await response.text()
            assert "https://" not in text and "http://" not in text
        async with http.get(emu.base_url + "/static/../server.py") as response:
            assert response.status == 404
        info = await get_json(http, emu.base_url + "/sandbox/info")
        assert [p["label"] for p in info["people"]] == ["requester", "member", "moderator", "owner"]
        assert [c["name"] for c in info["channels"]] == ["general", "videos"]
        assert info["bot_connected"] is False


async def test_composer_commands_come_from_what_the_bot_registered() -> None:
    async with DiscordEmulator() as emu, running_bot(emu), page_session(emu) as http:
        listing = await get_json(http, emu.base_url + "/sandbox/commands")
        commands = {c["name"]: c for c in listing["commands"]}
        assert set(commands) == {
            "animate", "slow", "later", "usage", "announce", "budget", "describe"
        }  # fmt: skip
        # Message commands go on a message's right-click menu, not in the composer.
        assert listing["message_commands"] == ["Animate this"]
        options = {o["name"]: o for o in commands["animate"]["options"]}
        assert options["image"]["type"] == 11
        assert [c["value"] for c in options["resolution"]["choices"]] == ["480p", "720p", "1080p"]
        as_member = await get_json(
            http, f"{emu.base_url}/sandbox/commands?user_id={emu.requester_id}"
        )
        assert "budget" not in {c["name"] for c in as_member["commands"]}


async def test_running_animate_from_the_page_shows_the_bot_reply_live() -> None:
    async with DiscordEmulator() as emu, running_bot(emu), page_session(emu) as http:
        async with http.ws_connect(emu.base_url + "/sandbox/events") as events:
            form = invoke_form(
                "animate", {"prompt": "a cat waves"}, emu.requester_id, image=png_bytes()
            )
            async with http.post(emu.base_url + "/sandbox/invoke", data=form) as response:
                assert response.status == 200
                interaction_id = (await response.json())["interaction_id"]

            seen: list[dict[str, Any]] = []
            while not any("here is your video" in _content(e) for e in seen):
                seen.append(json.loads((await asyncio.wait_for(events.receive(), 5)).data))
        assert seen[0]["type"] == "interaction_create"
        assert seen[0]["data"]["id"] == interaction_id
        assert any(e["type"] == "message_update" for e in seen)

        listing = await get_json(
            http, f"{emu.base_url}/sandbox/messages?user_id={emu.requester_id}"
        )
        contents = [item["message"]["content"] for item in listing["items"]]
        assert contents[0].startswith("Queued: ")
        assert any("here is your video" in c for c in contents)
        handle = emu.interaction(int(interaction_id))
        image = handle.payload["data"]["resolved"]["attachments"]
        assert [a["filename"] for a in image.values()] == ["image.png"]


async def test_buttons_and_ephemeral_replies_depend_on_who_is_acting() -> None:
    async with DiscordEmulator() as emu, running_bot(emu), page_session(emu) as http:
        form = invoke_form("usage", {}, emu.member_id)
        async with http.post(emu.base_url + "/sandbox/invoke", data=form) as response:
            assert response.status == 200
        await emu.wait_for_message(lambda m: m["content"] == "You have 3 credits left")
        as_member = await get_json(http, f"{emu.base_url}/sandbox/messages?user_id={emu.member_id}")
        as_requester = await get_json(
            http, f"{emu.base_url}/sandbox/messages?user_id={emu.requester_id}"
        )
        assert [i["visible_to"] for i in as_member["items"]] == [str(emu.member_id)]
        assert as_requester["items"] == []

        form = invoke_form("animate", {"prompt": "waves"}, emu.requester_id, image=png_bytes())
        async with http.post(emu.base_url + "/sandbox/invoke", data=form) as response:
            assert response.status == 200
        status = await emu.wait_for_message(lambda m: bool(m["components"]))
        click = {"message_id": status["id"], "custom_id": "job:cancel:7", "user_id": emu.member_id}
        async with http.post(emu.base_url + "/sandbox/click", json=click) as response:
            assert response.status == 200
        cancelled = await emu.wait_for_message(lambda m: m["content"].startswith("Job 7 cancelled"))
        assert cancelled["content"] == "Job 7 cancelled by Grace"


async def test_refusals_are_explained_to_the_person() -> None:
    async with DiscordEmulator() as emu, page_session(emu) as http:
        offline = invoke_form("usage", {}, emu.requester_id)
        async with http.post(emu.base_url + "/sandbox/invoke", data=offline) as response:
            assert response.status == 400
            assert "not registered" in (await response.json())["error"]
        async with running_bot(emu):
            bad = invoke_form(
                "animate", {"prompt": "x", "resolution": "4k"}, emu.requester_id, image=png_bytes()
            )
            async with http.post(emu.base_url + "/sandbox/invoke", data=bad) as response:
                assert response.status == 400
                assert "480p, 720p, 1080p" in (await response.json())["error"]
        missing = {"message_id": "1", "custom_id": "x", "user_id": emu.requester_id}
        async with http.post(emu.base_url + "/sandbox/click", json=missing) as response:
            assert response.status == 400


def _content(event: dict[str, Any]) -> str:
    message = event.get("data", {}).get("message") or {}
    return str(message.get("content", ""))


async def test_the_page_posts_a_message_runs_a_message_command_and_submits_a_form() -> None:
    async with DiscordEmulator() as emu, running_bot(emu), page_session(emu) as http:
        empty = aiohttp.FormData()
        empty.add_field("content", "  ")
        async with http.post(emu.base_url + "/sandbox/post", data=empty) as response:
            assert response.status == 400
        form = aiohttp.FormData()
        form.add_field("content", "look")
        form.add_field("user_id", str(emu.member_id))
        form.add_field("file", png_bytes(), filename="look.png", content_type="image/png")
        async with http.post(emu.base_url + "/sandbox/post", data=form) as response:
            assert response.status == 200
            message_id = (await response.json())["message_id"]
        [posted] = emu.channel_messages()
        assert posted["id"] == message_id and posted["author"]["id"] == str(emu.member_id)
        assert [a["filename"] for a in posted["attachments"]] == ["look.png"]

        async with http.post(
            emu.base_url + "/sandbox/message-command",
            json={"message_id": message_id, "name": "Animate this", "user_id": emu.member_id},
        ) as response:
            assert response.status == 200
            ran = emu.interaction((await response.json())["interaction_id"])
        await ran.wait_response()
        assert ran.content == f"{emu.member_id} wrote 'look' with [look.png]"

        opened = await emu.invoke_command("describe", {}, user_id=emu.requester_id)
        await opened.wait_response()
        prompt_id = opened.modal["components"][0]["components"][0]["custom_id"]  # type: ignore[index]
        values = {prompt_id: "a cat waves", "describe:style": ["photo"]}
        async with http.post(
            emu.base_url + "/sandbox/modal",
            json={"interaction_id": str(opened.id), "values": values, "user_id": emu.member_id},
        ) as response:
            # Only the person the form was shown to can submit it.
            assert response.status == 400
        async with http.post(
            emu.base_url + "/sandbox/modal",
            json={"interaction_id": str(opened.id), "values": values, "user_id": emu.requester_id},
        ) as response:
            assert response.status == 200
            submitted = emu.interaction((await response.json())["interaction_id"])
        await submitted.wait_response()
        assert submitted.content == "prompt=a cat waves style=photo"
