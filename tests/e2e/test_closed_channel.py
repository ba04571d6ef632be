"""A channel closed to the bot, or deleted, while a job runs there: the member hears of the
job's end once, by DM, and the bot does not knock on the closed channel again and again."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from tests.harness.e2e import E2E, WAIT, embed_titles

LEASE = 1.0
"""A short lease: endings a status message missed are shown again from one lease after the
job ended, at every sweep (here every poll, 0.1 s)."""


@pytest.mark.settings(queue_seconds=1.0, run_seconds=0.3)
async def test_the_member_hears_of_the_end_once_when_the_channel_shuts_the_bot_out(
    e2e: E2E,
) -> None:
    await job_with_a_short_lease(e2e)
    e2e.emu.deny_bot_permissions(e2e.emu.channel_id, "view_channel", "send_messages")

    note = await told_once(e2e)
    assert "lost permission" in str(note["content"])
    assert "Failed" in str(note["embeds"])


@pytest.mark.settings(queue_seconds=0.0, run_seconds=1.5)
async def test_the_member_hears_of_the_end_once_when_the_channel_is_deleted(e2e: E2E) -> None:
    # Past the queue, the video is made all the same; it cannot be posted anywhere.
    await job_with_a_short_lease(e2e, shown="Generating")
    e2e.emu.delete_channel(e2e.emu.channel_id)

    note = await told_once(e2e)
    assert "was deleted" in str(note["content"])
    assert "Failed" in str(note["embeds"])


async def job_with_a_short_lease(e2e: E2E, shown: str = "Waiting in the queue") -> None:
    """The bot restarted with a short `LEASE`, and a member's job whose status shows it
    ``shown`` (queued at the provider, unless told otherwise)."""
    await e2e.stop_bot()
    config = e2e.config
    await e2e.start_bot(
        dataclasses.replace(config, jobs=dataclasses.replace(config.jobs, lease_seconds=LEASE))
    )
    await e2e.animate("a fox in the snow")
    await e2e.wait_status(lambda m: shown in embed_titles(m))


async def told_once(e2e: E2E) -> dict[str, object]:
    """The one DM the member gets about the job's end, once many sweeps have passed; the bot
    tried the channel at most once more meanwhile."""
    emu = e2e.emu

    def notes() -> list[dict[str, object]]:
        dm = emu.dm_channel_id(emu.requester_id)
        return emu.channel_messages(dm) if dm is not None else []

    async def told() -> None:
        while True:
            if notes():
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(told(), WAIT)
    refused_before = refused_edits(e2e)
    # Many sweeps later: the ending the channel could not show was not tried again and again,
    # each time with a new DM.
    await asyncio.sleep(6 * LEASE)
    [note] = notes()
    assert refused_edits(e2e) - refused_before <= 1
    return note


def refused_edits(e2e: E2E) -> int:
    """Edits and posts in the emulator's channel that Discord refused (403 or 404)."""
    return sum(
        1
        for r in e2e.emu.request_log.records
        if r.status in (403, 404) and f"/channels/{e2e.emu.channel_id}/" in r.path
    )


@pytest.mark.settings(queue_seconds=60.0, run_seconds=0.3)
async def test_a_deleted_channel_s_job_still_in_the_queue_is_called_off(e2e: E2E) -> None:
    # Nothing was spent on it yet: the video service's queue lets it go, nothing is charged,
    # and the member hears why.
    await job_with_a_short_lease(e2e)
    e2e.emu.delete_channel(e2e.emu.channel_id)

    note = await told_once(e2e)
    assert "was deleted" in str(note["content"])
    assert "channel was deleted" in str(note["embeds"])
    assert [job.status for job in e2e.runcomfy.jobs.values()] == ["cancelled"]
    usage = await e2e.emu.invoke_command("usage", {}, channel_id=e2e.emu.other_channel_id)
    await usage.wait_until(lambda h: h.embeds, WAIT)
    fields = {f["name"]: f["value"] for f in usage.embeds[0]["fields"]}
    assert fields["Used today"].startswith("0 credits of")


@pytest.mark.parametrize("deleted", ["the thread", "its channel"])
@pytest.mark.settings(queue_seconds=60.0, run_seconds=0.3)
async def test_a_deleted_thread_s_job_still_in_the_queue_is_called_off(
    e2e: E2E, deleted: str
) -> None:
    emu = e2e.emu
    thread = emu.start_thread("dunes")
    _, submitted = await e2e.animate_posted(thread, "sand drifts over a ridge")
    assert "on its way" in await e2e.reply_text(submitted)
    await emu.wait_for_message(
        lambda m: "Waiting in the queue" in embed_titles(m), WAIT, channel_id=thread
    )

    # A channel deleted takes its threads with it: the bot hears of the channel only.
    emu.delete_channel(thread if deleted == "the thread" else emu.channel_id)

    async def called_off() -> None:
        while True:
            if [job.status for job in e2e.runcomfy.jobs.values()] == ["cancelled"]:
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(called_off(), WAIT)
