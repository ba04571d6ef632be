"""The approval queue end to end, across a restart of the bot."""

from __future__ import annotations

import pytest

from bot.config import QuotaConfig
from bot.store import open_database
from tests.harness.e2e import E2E, custom_ids, embed_titles

# Representative of the end-to-end tests, on both stores.
pytestmark = pytest.mark.store_backends("sqlite", "postgres")


@pytest.mark.settings(quota=QuotaConfig(member_credits=0))
async def test_approve_buttons_work_after_a_restart(e2e: E2E) -> None:
    emu = e2e.emu
    async with open_database(e2e.config.database) as store:
        await store.set_approvals(emu.guild_id, True, by=emu.moderator_id)
        await store.set_modlog_channel(emu.guild_id, emu.other_channel_id, by=emu.moderator_id)

    handle = await e2e.animate("over my cap")
    assert "went to the moderators" in await e2e.reply_text(handle)
    request = await emu.wait_for_message(
        lambda m: any(c.startswith("approval:approve:") for c in custom_ids(m)),
        10,
        channel_id=emu.other_channel_id,
    )
    await e2e.wait_status(lambda m: "moderator" in embed_titles(m))

    await e2e.stop_bot()
    await e2e.start_bot()

    [approve] = [c for c in custom_ids(request) if c.startswith("approval:approve:")]
    refused = await emu.click_button(int(request["id"]), approve, user_id=emu.member_id)
    await refused.wait_response(10)
    click = await emu.click_button(int(request["id"]), approve, user_id=emu.moderator_id)
    await click.wait_response(10)

    video = await e2e.wait_video()
    assert f"<@{emu.requester_id}>" in video["content"]
    # The charge is committed once the post is made; the status says so.
    await e2e.wait_status(lambda m: "ready" in embed_titles(m))
    fields = await e2e.usage_fields()
    assert fields["Server pool"].startswith("1 credit used")
    assert e2e.runcomfy.count("POST", "/v1/models/bytedance/seedance-1-0/lite/image-to-video") == 1
