"""A channel closed to the bot while a job runs there: the member hears of the job's end once,
by DM, and the bot does not knock on the closed channel again and again."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from tests.harness.e2e import E2E, WAIT

LEASE = 1.0
"""A short lease: endings a status message missed are shown again from one lease after the
job ended, at every sweep (here every poll, 0.1 s)."""


@pytest.mark.settings(queue_seconds=1.0, run_seconds=0.3)
async def test_the_member_hears_of_the_end_once_when_the_channel_shuts_the_bot_out(
    e2e: E2E,
) -> None:
    await e2e.stop_bot()
    config = e2e.config
    await e2e.start_bot(
        dataclasses.replace(config, jobs=dataclasses.replace(config.jobs, lease_seconds=LEASE))
    )
    emu = e2e.emu
    await e2e.animate("a fox in the snow")
    await e2e.wait_queued()
    emu.deny_bot_permissions(emu.channel_id, "view_channel", "send_messages", "attach_files")

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
    assert "lost permission" in str(note["content"])
    assert refused_edits(e2e) - refused_before <= 1


def refused_edits(e2e: E2E) -> int:
    """Edits and posts in the emulator's channel that Discord refused (403 or 404)."""
    return sum(
        1
        for r in e2e.emu.request_log.records
        if r.status in (403, 404) and f"/channels/{e2e.emu.channel_id}/" in r.path
    )
