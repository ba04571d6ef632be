"""Discord-side faults, end to end: the real bot, started the real way, against the emulators."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from bot.app import run_bot
from bot.store import open_store
from sandbox.world import Sandbox, SandboxSettings
from tests.harness.discord_fakes import eventually
from tests.harness.images import make_image


@pytest.fixture
async def live() -> AsyncIterator[Sandbox]:
    settings = SandboxSettings(
        port=0,
        queue_seconds=0.4,
        run_seconds=0.4,
        video_size=(96, 64),
        fps=8,
        status_edit_interval=0.1,
        poll_interval=0.1,
    )
    async with Sandbox(settings) as sandbox:
        task = asyncio.create_task(run_bot(sandbox.config, sandbox.secrets))
        try:
            await sandbox.discord.wait_for_bot(timeout=20)
            yield sandbox
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert sandbox.discord.unknown_routes == []
        assert sandbox.discord.crashes == []


async def until(check: Callable[[], bool], within: float = 15.0) -> None:
    async def holds() -> bool:
        return check()

    await eventually(holds, within=within)


async def animate(sandbox: Sandbox, prompt: str = "a lighthouse in a storm") -> Any:
    emu = sandbox.discord
    image = await emu.upload_attachment("storm.png", make_image(640, 480), "image/png")
    handle = await emu.invoke_command("animate", {"image": image, "prompt": prompt})
    await handle.wait_response(10)
    return handle


def status_messages(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [
        m
        for m in sandbox.discord.channel_messages()
        if (m.get("content") or "").startswith("Video for")
    ]


def videos(sandbox: Sandbox, channel_id: int | None = None) -> list[dict[str, Any]]:
    return [
        m
        for m in sandbox.discord.channel_messages(channel_id)
        if any(a["filename"].endswith(".mp4") for a in m.get("attachments", []))
    ]


def titles(message: dict[str, Any]) -> str:
    return " ".join(str(e.get("title")) for e in message.get("embeds", []))


async def test_a_deleted_status_message_is_posted_again(live: Sandbox) -> None:
    live.runcomfy.plan_next_job(queue_seconds=1.5, run_seconds=0.5)
    await animate(live)
    await until(lambda: len(status_messages(live)) == 1)
    [first] = status_messages(live)
    emu = live.discord
    async with aiohttp.ClientSession() as http:
        url = f"{emu.api_base}/channels/{emu.channel_id}/messages/{first['id']}"
        headers = {"Authorization": f"Bot {emu.bot_token}"}
        async with http.delete(url, headers=headers) as resp:
            assert resp.status == 204
    await until(lambda: len(videos(live)) == 1)
    await until(lambda: "ready" in titles(status_messages(live)[-1]))
    [replacement] = status_messages(live)
    assert replacement["id"] != first["id"]


async def test_lost_permission_tells_the_member_by_dm_and_charges_nothing(live: Sandbox) -> None:
    live.runcomfy.plan_next_job(queue_seconds=1.0, run_seconds=0.3)
    await animate(live)
    await until(lambda: len(status_messages(live)) == 1)
    emu = live.discord
    emu.deny_bot_permissions(emu.channel_id, "view_channel", "send_messages", "attach_files")
    dm = emu.dm_channel_id(emu.requester_id)
    await until(lambda: dm is not None and bool(emu.channel_messages(dm)), within=15)
    [note] = emu.channel_messages(dm)
    assert "lost permission" in note["content"]
    assert "Failed" in titles(note)
    assert videos(live) == []

    usage = await emu.invoke_command("usage", {})
    await usage.wait_response(10)
    fields = {f["name"]: f["value"] for f in usage.embeds[0]["fields"]}
    assert fields["Used today"].startswith("0 credits")


async def test_a_refused_key_is_told_to_moderators_once(live: Sandbox) -> None:
    emu = live.discord
    async with open_store(live.config.database.path) as store:
        await store.set_modlog_channel(emu.guild_id, emu.other_channel_id, by=emu.moderator_id)
    live.runcomfy.faults.add(route="submit", kind="http", status=401, times=5)
    live.runcomfy.faults.add(route="model", kind="http", status=401, times=5)
    await animate(live)
    await until(lambda: "key was refused" in str(status_messages(live)))
    second = await animate(live, prompt="again")
    await second.wait_until(lambda h: "refusing the bot's account" in (h.content or ""), 10)

    def alerts() -> list[dict[str, Any]]:
        return [
            m
            for m in emu.channel_messages(emu.other_channel_id)
            if "refuses the bot's account" in (m.get("content") or "")
        ]

    await until(lambda: len(alerts()) == 1)
    await asyncio.sleep(0.5)
    assert len(alerts()) == 1


async def test_a_status_post_whose_answer_was_lost_is_not_left_behind(live: Sandbox) -> None:
    """Discord made the status message but the connection dropped before the bot heard of it:
    the bot sends it again with the same nonce, gets the same message back, and the job runs.
    Without that the channel kept a "queued" message with a live Cancel button beside a member
    told the video never started."""
    live.runcomfy.plan_next_job(queue_seconds=0.3, run_seconds=0.3)
    live.discord.lose_answers("POST", "/channels/{channel_id}/messages")
    handle = await animate(live)
    await until(lambda: len(videos(live)) == 1)
    await until(lambda: "ready" in titles(status_messages(live)[-1]))
    assert len(status_messages(live)) == 1
    assert "on its way" in (handle.content or "")


async def test_a_video_post_whose_answer_was_lost_is_posted_once(live: Sandbox) -> None:
    live.runcomfy.plan_next_job(queue_seconds=1.0, run_seconds=0.3)
    await animate(live)
    await until(lambda: len(status_messages(live)) == 1)
    live.discord.lose_answers("POST", "/channels/{channel_id}/messages")
    await until(lambda: "ready" in titles(status_messages(live)[-1]))
    assert len(videos(live)) == 1
    assert len(status_messages(live)) == 1
