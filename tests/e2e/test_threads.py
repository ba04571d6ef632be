"""Animate and /animate in a thread: the job lives in the thread, the parent's rules apply."""

from __future__ import annotations

from bot.store import open_store
from tests.harness.e2e import E2E, WAIT, is_video


async def test_animate_in_a_thread_of_an_allowed_channel_delivers_in_the_thread(e2e: E2E) -> None:
    emu = e2e.emu
    # Only the parent channel is allowed: its threads follow it.
    async with open_store(e2e.sandbox.config.database.path) as store:
        await store.allow_channel(emu.guild_id, emu.channel_id, by=emu.moderator_id)
    thread = emu.start_thread("sunsets")
    _, submitted = await e2e.animate_posted(thread, "the sun slips under the sea")
    assert "on its way" in await e2e.reply_text(submitted)

    video = await emu.wait_for_message(is_video, WAIT, channel_id=thread)
    assert video["content"].startswith(f"<@{emu.requester_id}> your video is ready!")
    status = await emu.wait_for_message(
        lambda m: str(m.get("content")).startswith("Video for"), WAIT, channel_id=thread
    )
    assert status["channel_id"] == str(thread)
    # Nothing of it landed in the parent channel.
    assert [m for m in emu.channel_messages(emu.channel_id) if is_video(m)] == []


async def test_a_thread_of_a_channel_not_allowed_is_refused_and_costs_nothing(e2e: E2E) -> None:
    emu = e2e.emu
    async with open_store(e2e.sandbox.config.database.path) as store:
        await store.allow_channel(emu.guild_id, emu.other_channel_id, by=emu.moderator_id)
    thread = emu.start_thread("elsewhere")
    posted, submitted = await e2e.animate_posted(thread, "gulls circle the pier")
    reply = await e2e.reply_text(submitted)
    assert "on its way" not in reply and "channel" in reply.lower()
    assert e2e.runcomfy.submitted == []
    assert emu.channel_messages(thread) == [posted]
