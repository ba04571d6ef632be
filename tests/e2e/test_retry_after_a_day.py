"""Retry a day later: Discord's signed attachment URLs have expired, and the bot signs them anew."""

from __future__ import annotations

import pytest

from tests.harness.e2e import E2E, WAIT, custom_ids


@pytest.mark.settings(cooldown_seconds=0.0)
async def test_retry_after_the_frames_urls_expired_makes_the_video_again(e2e: E2E) -> None:
    await e2e.animate("a paper boat on a puddle")
    video = await e2e.wait_video()
    first_url = e2e.runcomfy.submitted[-1]["first_frame_image_url"]
    # A day and a bit later every attachment URL handed out so far has expired.
    e2e.emu.advance_clock(25 * 3600)
    [retry] = [c for c in custom_ids(video) if c.startswith("job:retry:")]
    click = await e2e.emu.click_button(int(video["id"]), retry)
    await click.wait_until(lambda h: h.content, WAIT)
    assert "on its way" in click.content

    await e2e.emu.wait_for_message(lambda _m: len(e2e.videos()) == 2, WAIT)
    again = e2e.runcomfy.submitted[-1]["first_frame_image_url"]
    # The provider got a freshly signed URL of the frame kept on the status message.
    assert again != first_url
    assert len(e2e.runcomfy.submitted) == 2
