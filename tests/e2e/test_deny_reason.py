"""A moderator denies an over-cap request with a reason: the member reads it, nothing is spent."""

from __future__ import annotations

import pytest

from bot.config import QuotaConfig
from bot.runcomfy.client import MODEL_PATH
from bot.store import open_store
from tests.harness.e2e import E2E, WAIT, custom_ids, embed_titles

REASON = "Use your own **credits** first @everyone"


async def over_cap_request(e2e: E2E) -> tuple[dict[str, object], str]:
    """A request over the member's cap, waiting in the mod-log; its message and Deny id."""
    emu = e2e.emu
    async with open_store(e2e.sandbox.config.database.path) as store:
        await store.set_approvals(emu.guild_id, True, by=emu.moderator_id)
        await store.set_modlog_channel(emu.guild_id, emu.other_channel_id, by=emu.moderator_id)
    handle = await e2e.animate("a kite over the dunes")
    assert "went to the moderators" in await e2e.reply_text(handle)
    request = await emu.wait_for_message(
        lambda m: any(c.startswith("approval:deny:") for c in custom_ids(m)),
        WAIT,
        channel_id=emu.other_channel_id,
    )
    [deny] = [c for c in custom_ids(request) if c.startswith("approval:deny:")]
    return request, deny


@pytest.mark.settings(quota=QuotaConfig(member_credits=0))
async def test_a_denial_with_a_reason_reaches_the_member_escaped_and_charges_nothing(
    e2e: E2E,
) -> None:
    emu = e2e.emu
    request, deny = await over_cap_request(e2e)

    # A member may not even open the form.
    refused = await emu.click_button(int(request["id"]), deny, user_id=emu.member_id)
    await refused.wait_until(lambda h: h.content, WAIT)
    assert "Only moderators" in (refused.content or "")
    assert refused.modal is None

    click = await emu.click_button(int(request["id"]), deny, user_id=emu.moderator_id)
    assert (await click.wait_response(WAIT))["type"] == 9
    assert click.modal is not None and click.modal["title"] == "Deny this video request"
    submitted = await emu.submit_modal(click, {"deny:reason": REASON})
    answer = await submitted.wait_until(lambda h: h.content, WAIT)
    assert answer.startswith("Denied")
    assert submitted.ephemeral

    # The member's status message ends with the reason, as text, not markdown or a ping.
    status = await e2e.wait_status(lambda m: "Cancelled" in embed_titles(m))
    fields = {f["name"]: f["value"] for f in status["embeds"][0]["fields"]}
    assert "A moderator denied this request" in fields["What happened"]
    assert r"Use your own \*\*credits\*\* first" in fields["What happened"]
    told = await emu.wait_for_message(
        lambda m: "declined your video request" in str(m.get("content")),
        WAIT,
        channel_id=emu.channel_id,
    )
    assert r"\*\*credits\*\*" in told["content"]
    assert told["mention_everyone"] is False
    assert emu.pinged_users(int(told["id"])) == [emu.requester_id]

    # The mod-log marks the request and keeps the reason in the job's entry.
    marked = await emu.wait_for_message(
        lambda m: str(m.get("content") or "").startswith("Denied by"),
        WAIT,
        channel_id=emu.other_channel_id,
    )
    assert marked["id"] == request["id"] and custom_ids(marked) == []
    assert r"\*\*credits\*\*" in marked["content"]
    entry = await emu.wait_for_message(
        lambda m: any(f["name"] == "Why" for e in m.get("embeds", []) for f in e["fields"]),
        WAIT,
        channel_id=emu.other_channel_id,
    )
    why = {f["name"]: f["value"] for f in entry["embeds"][0]["fields"]}["Why"]
    assert r"Use your own \*\*credits\*\* first" in why

    fields = await e2e.usage_fields()
    assert fields["Used today"].startswith("0 credits")
    assert fields["Server pool"].startswith("0 credits used")
    assert e2e.runcomfy.count("POST", MODEL_PATH) == 0


@pytest.mark.settings(quota=QuotaConfig(member_credits=0))
async def test_a_denial_without_a_reason_still_ends_the_request(e2e: E2E) -> None:
    emu = e2e.emu
    request, deny = await over_cap_request(e2e)
    click = await emu.click_button(int(request["id"]), deny, user_id=emu.moderator_id)
    await click.wait_response(WAIT)
    submitted = await emu.submit_modal(click, {})
    assert (await submitted.wait_until(lambda h: h.content, WAIT)).startswith("Denied")
    await e2e.wait_status(lambda m: "Cancelled" in embed_titles(m))
    told = await emu.wait_for_message(
        lambda m: "declined your video request. Nothing was charged." in str(m.get("content")),
        WAIT,
        channel_id=emu.channel_id,
    )
    assert emu.pinged_users(int(told["id"])) == [emu.requester_id]
    assert e2e.runcomfy.count("POST", MODEL_PATH) == 0
