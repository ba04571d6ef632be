"""A status message over an hour old still reaches its final state (Discord's 30046 cap)."""

from __future__ import annotations

from tests.harness.e2e import E2E, embed_titles


async def test_an_hour_old_status_message_still_shows_the_video_ready(e2e: E2E) -> None:
    e2e.runcomfy.plan_next_job(queue_seconds=1.5, run_seconds=1.0)
    await e2e.animate("a slow sunrise")
    await e2e.wait_queued()
    # The job has been waiting for over an hour, as far as Discord can tell: edits to its
    # status message now fall under Discord's cap on edits to old messages.
    e2e.emu.advance_clock(3700)
    await e2e.wait_video()
    # Discord holds edits to old messages back (about 3 per 20 s): the final state still shows.
    final = await e2e.emu.wait_for_message(
        lambda m: (
            str(m.get("content") or "").startswith("Video for") and "Video ready" in embed_titles(m)
        ),
        60,
        channel_id=e2e.emu.channel_id,
    )
    assert "Cancel" not in str(final.get("components"))
    assert len(e2e.videos()) == 1
