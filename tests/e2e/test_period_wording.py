"""A server that counts by the week is told "this week" wherever a member reads their quota."""

from __future__ import annotations

import pytest

from bot.config import QuotaConfig
from tests.harness.e2e import E2E, WAIT


@pytest.mark.settings(quota=QuotaConfig(member_credits=1))
async def test_a_weekly_server_says_week_in_usage_status_and_refusals(e2e: E2E) -> None:
    emu = e2e.emu
    # The operator's default is a day; the moderators switch this server to weeks.
    budget = await emu.invoke_command("admin budget", {"period": "week"}, user_id=emu.moderator_id)
    await budget.wait_until(lambda h: h.content or h.embeds, WAIT)

    fields = await e2e.usage_fields()
    assert "Used this week" in fields, fields
    assert "today" not in " ".join(fields)

    # The requester's credits left are in their private acknowledgement, not the public status.
    accepted = await e2e.animate("a kite over the dunes")
    ack = await e2e.reply_text(accepted)
    assert "left this week" in ack, ack
    await e2e.wait_status(lambda m: "Video ready" in str(m.get("embeds")))

    refused = await e2e.animate("one more kite")
    text = await e2e.reply_text(refused)
    assert "this week" in text and "today" not in text, text
