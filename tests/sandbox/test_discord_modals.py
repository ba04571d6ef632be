"""Modals and message context-menu commands, driven through the real discord.py client."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from sandbox.discord import DiscordEmulator, InvocationError
from tests.harness.emulated_bot import running_bot


async def test_a_modal_with_a_label_select_is_submitted_and_answered() -> None:
    async with DiscordEmulator() as emu, running_bot(emu):
        opened = await emu.invoke_command("describe", {})
        assert (await opened.wait_response())["type"] == 9
        modal = opened.modal
        assert modal is not None and modal["title"] == "Describe your video"
        row, label = modal["components"]
        assert (row["type"], label["type"], label["component"]["type"]) == (1, 18, 3)
        ids = [row["id"], row["components"][0]["id"], label["id"], label["component"]["id"]]
        assert sorted(ids) == [1, 2, 3, 4]

        prompt_id = row["components"][0]["custom_id"]
        with pytest.raises(InvocationError, match="at least 3"):
            await emu.submit_modal(opened, {prompt_id: "hi", "describe:style": ["anime"]})
        with pytest.raises(InvocationError, match="among"):
            await emu.submit_modal(opened, {prompt_id: "a cat", "describe:style": ["oil"]})

        submitted = await emu.submit_modal(
            opened, {prompt_id: "a cat waves", "describe:style": ["photo"]}
        )
        assert submitted.payload["type"] == 5
        assert submitted.payload["data"]["custom_id"] == modal["custom_id"]
        await submitted.wait_response()
        assert submitted.content == "prompt=a cat waves style=photo"
        with pytest.raises(InvocationError, match="already submitted"):
            await emu.submit_modal(opened, {prompt_id: "again", "describe:style": ["photo"]})


async def test_a_message_context_menu_command_gets_the_target_message() -> None:
    async with DiscordEmulator() as emu, running_bot(emu):
        posted = await emu.send_user_message("make this move")
        handle = await emu.invoke_message_command("Animate this", int(posted["id"]))
        await handle.wait_response()
        data = handle.payload["data"]
        assert (data["type"], data["target_id"]) == (3, posted["id"])
        assert data["resolved"]["messages"][posted["id"]]["content"] == "make this move"
        assert handle.content == f"{emu.requester_id} wrote 'make this move' with []"
        assert handle.ephemeral
        reply = handle.original()
        assert reply is not None and reply["type"] == 23
        assert reply["interaction_metadata"]["command_type"] == 3
        with pytest.raises(InvocationError, match="message command"):
            await emu.invoke_message_command("Imagine this", int(posted["id"]))


def _modal(**changes: Any) -> dict[str, Any]:
    text = {"type": 4, "custom_id": "prompt", "style": 1, "label": "Prompt"}
    data: dict[str, Any] = {
        "custom_id": "form",
        "title": "Describe",
        "components": [{"type": 1, "components": [text]}],
    }
    data.update(changes)
    return {"type": 9, "data": data}


def _row(**text: Any) -> list[dict[str, Any]]:
    base = {"type": 4, "custom_id": "prompt", "style": 1, "label": "Prompt"}
    return [{"type": 1, "components": [{**base, **text}]}]


BAD_MODALS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("title over 45", _modal(title="t" * 46), ["data", "title"]),
    ("custom_id over 100", _modal(custom_id="c" * 101), ["data", "custom_id"]),
    ("no components", _modal(components=[]), ["data", "components"]),
    ("six components", _modal(components=_row() * 6), ["data", "components"]),
    (
        "label over 45",
        _modal(components=_row(label="l" * 46)),
        ["data", "components", "0", "components", "0", "label"],
    ),
    (
        "max_length over 4000",
        _modal(components=_row(max_length=4001)),
        ["data", "components", "0", "components", "0", "max_length"],
    ),
    (
        "min over max",
        _modal(components=_row(min_length=10, max_length=5)),
        ["data", "components", "0", "components", "0", "min_length"],
    ),
    (
        "label component over 45",
        _modal(
            components=[
                {
                    "type": 18,
                    "label": "x" * 46,
                    "component": {"type": 4, "custom_id": "p", "style": 1},
                }
            ]
        ),
        ["data", "components", "0", "label"],
    ),
]


@pytest.mark.parametrize(("case", "body", "path"), BAD_MODALS, ids=[c[0] for c in BAD_MODALS])
async def test_a_bad_modal_is_refused_with_50035(
    case: str, body: dict[str, Any], path: list[str]
) -> None:
    async with DiscordEmulator() as emu, running_bot(emu):
        handle = await emu.invoke_command("usage", {})
        await handle.wait_response()  # let the bot answer, then answer a fresh one by hand
        emu.service.interactions[handle.id].acknowledged_at = None
        url = f"{emu.api_base}/interactions/{handle.id}/{handle.token}/callback"
        async with aiohttp.ClientSession() as http, http.post(url, json=body) as r:
            assert r.status == 400, case
            answer = await r.json()
        assert answer["code"] == 50035
        node = answer["errors"]
        for key in path:
            node = node[key]
        assert node["_errors"][0]["code"]
