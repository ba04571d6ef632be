"""A job's first status: posted before the job starts (the first in a channel), then showing
where it stands; posted once the job is queued, showing its place in line."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime

import pytest

from tests.harness.e2e import E2E, WAIT, embed_titles

SLOW_EDITS = 60.0
"""Far longer than the test may wait: a status shown in time did not wait for the interval."""


@pytest.mark.settings(queue_seconds=120.0, status_edit_interval=SLOW_EDITS)
async def test_a_status_posted_before_its_job_started_shows_the_queue_without_waiting(
    e2e: E2E,
) -> None:
    # Nothing was posted in this channel yet: the status goes first, showing the job on its
    # way to the video service; the job starts once the channel took it.
    await e2e.animate("a paper boat on a puddle")

    # The job is queued at the provider a moment later. The status's interval is between two
    # edits; the post is no edit: the member sees the queue now, not a minute later.
    async def queued() -> dict[str, object]:
        while True:
            shown = e2e.status_messages()
            if shown and "Waiting in the queue" in embed_titles(shown[0]):
                return shown[0]
            await asyncio.sleep(0.05)

    edited = await asyncio.wait_for(queued(), WAIT)
    # Posted showing something else first (the job on its way), then edited.
    assert edited["edited_timestamp"] is not None
    posted_at = datetime.fromisoformat(str(edited["timestamp"]))
    edited_at = datetime.fromisoformat(str(edited["edited_timestamp"]))
    assert (edited_at - posted_at).total_seconds() < SLOW_EDITS


def queue_field(message: dict[str, object]) -> str:
    [embed] = message["embeds"]  # type: ignore[misc]
    return next((f["value"] for f in embed.get("fields", []) if f["name"] == "Queue"), "")


@pytest.mark.settings(queue_seconds=120.0, status_edit_interval=0.5)
async def test_a_status_posted_once_its_job_is_queued_shows_its_place_in_line(e2e: E2E) -> None:
    # The channel took the bot's last post: the next job starts at once and its status follows.
    await e2e.animate("a paper boat on a puddle")
    await e2e.wait_queued()
    await e2e.animate("a kite over the dunes", user_id=e2e.emu.member_id)

    status = await e2e.wait_status(lambda m: "a kite over the dunes" in str(m["embeds"]))
    # Posted showing the place the video service gave it, not "in line" and an edit later:
    # an edit spent on nothing new is one less for every other job in the channel.
    assert re.fullmatch(r"#\d+ in line", queue_field(status))
    await asyncio.sleep(1.5)
    assert e2e.emu.edit_count(int(str(status["id"]))) == 0
