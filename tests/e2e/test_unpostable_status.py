"""A job started before its status is up, in a channel that then refuses the bot's post."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.config import QuotaConfig
from tests.harness.e2e import E2E, WAIT

ROOMY = QuotaConfig(member_credits=100, server_credits=1000, member_concurrent_jobs=5)


@pytest.mark.settings(quota=ROOMY, cooldown_seconds=0.0)
async def test_a_started_job_whose_status_cannot_be_posted_is_stopped_and_costs_nothing(
    e2e: E2E,
) -> None:
    handle = await refused_after_its_check(e2e, queue_seconds=60.0)

    # The member hears it at once, privately; the provider's job is called off while it
    # waits in the queue, and nothing is charged for it.
    reply = await e2e.reply_text(handle)
    assert "could not post in this channel" in reply
    assert "Nothing was charged" in reply
    second = [job for job in e2e.runcomfy.jobs.values() if job.status != "in_queue"]
    assert [job.status for job in second] == ["cancelled"]
    # Only the first job still holds its credit.
    fields = await e2e.usage_fields()
    assert fields["Used today"] == "0 credits (+1 held by running jobs) of 100"
    # The private answer told them: no DM says it again.
    dm = e2e.emu.dm_channel_id(e2e.emu.requester_id)
    assert dm is None or e2e.emu.channel_messages(dm) == []


@pytest.mark.settings(quota=ROOMY, cooldown_seconds=0.0)
async def test_a_job_past_the_queue_runs_on_and_the_member_hears_by_dm(e2e: E2E) -> None:
    # This time the provider starts the job at once: too late to call it off.
    handle = await refused_after_its_check(e2e, queue_seconds=0.0)

    reply = await e2e.reply_text(handle)
    assert "can no longer post in this channel" in reply
    assert "Nothing is charged unless it is posted" in reply
    # It ends where the member can read it, and costs them nothing: the video could not be
    # posted.
    emu = e2e.emu

    async def told() -> list[dict[str, object]]:
        while True:
            dm = emu.dm_channel_id(emu.requester_id)
            found = emu.channel_messages(dm) if dm is not None else []
            if found:
                return found
            await asyncio.sleep(0.05)

    [note] = await asyncio.wait_for(told(), WAIT)
    assert "lost permission" in str(note["content"])
    assert e2e.videos() == []
    fields = await e2e.usage_fields()
    assert fields["Used today"] == "0 credits (+1 held by running jobs) of 100"


async def refused_after_its_check(e2e: E2E, *, queue_seconds: float) -> Any:
    """A member's second /animate in a channel that took the bot's last post (so the job
    starts before its status is up), whose image comes slowly while a moderator takes the
    bot's right to post there, after Discord checked it for the command. The second job
    waits ``queue_seconds`` in the provider's queue; the handle of its interaction."""
    emu = e2e.emu
    e2e.runcomfy.plan_next_job(queue_seconds=60.0, run_seconds=1.0)
    await e2e.animate("a heron at dawn")
    await e2e.wait_queued()
    emu.store.downloads_open.clear()
    e2e.runcomfy.plan_next_job(queue_seconds=queue_seconds, run_seconds=1.0)
    handle = await e2e.animate("a heron at dusk")
    await e2e.wait_download_held()
    emu.deny_bot_permissions(emu.channel_id, "send_messages", "attach_files")
    emu.store.downloads_open.set()
    return handle
