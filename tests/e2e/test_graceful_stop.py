"""A graceful stop (SIGTERM) hands every job back: the next start finishes them at once."""

from __future__ import annotations

import asyncio

import pytest

from tests.harness.e2e import E2E, WAIT, custom_ids, embed_titles

# Representative of the end-to-end tests, on both stores.
pytestmark = pytest.mark.store_backends("sqlite", "postgres")

SUBMIT = "/v1/models/bytedance/seedance-1-0/lite/image-to-video"


async def test_a_stopped_bot_hands_its_jobs_to_the_next_start_without_waiting(e2e: E2E) -> None:
    e2e.runcomfy.plan_next_job(queue_seconds=2.0, run_seconds=0.5)
    await e2e.animate("a lantern drifting downstream")
    await e2e.wait_queued()
    # Stopped the way SIGTERM stops it; the default lease is 30 s, far longer than this test
    # waits, so the job is only finished in time if the stop handed its lease back.
    await e2e.stop_bot()
    await e2e.start_bot()
    video = await e2e.wait_video()
    assert f"<@{e2e.emu.requester_id}>" in video["content"]
    assert len(e2e.videos()) == 1
    assert e2e.runcomfy.count("POST", SUBMIT) == 1


async def test_a_request_under_way_when_the_bot_stops_is_answered_before_it_goes(e2e: E2E) -> None:
    # The member's image is slow to come from Discord's CDN: their /animate is acknowledged
    # ("thinking...") and still being checked when the bot is told to stop.
    e2e.emu.store.downloads_open.clear()
    handle = await e2e.animate("a kite over the dunes")
    await stop_while_checking(e2e)

    # Told plainly, before the bot went: not left "thinking" until Discord gives up on it.
    reply = await e2e.reply_text(handle)
    assert "restarting" in reply and "Nothing was charged" in reply
    assert e2e.runcomfy.count("POST", SUBMIT) == 0
    assert e2e.status_messages() == []


@pytest.mark.settings(cooldown_seconds=0.0)
async def test_a_retry_under_way_when_the_bot_stops_is_answered_before_it_goes(e2e: E2E) -> None:
    await e2e.animate("a kite over the dunes")
    video = await e2e.wait_video()
    # Settled (the member's one job at a time is over) once the status says so.
    await e2e.wait_status(lambda m: "ready" in embed_titles(m))
    [retry] = [c for c in custom_ids(video) if c.startswith("job:retry:")]
    # The frames kept on the status message come slowly: the Retry is acknowledged and still
    # being checked when the bot is told to stop.
    e2e.emu.store.downloads_open.clear()
    click = await e2e.emu.click_button(int(video["id"]), retry)
    await stop_while_checking(e2e)

    await click.wait_until(lambda h: h.content, WAIT)
    assert "restarting" in click.content and "Nothing was charged" in click.content
    assert e2e.runcomfy.count("POST", SUBMIT) == 1


async def stop_while_checking(e2e: E2E) -> None:
    """Stop the bot (as SIGTERM does) while a member's image is still coming from the CDN,
    then let it through: the bot is closing when the request reaches its checks."""
    await e2e.wait_download_held()
    stopping = asyncio.create_task(e2e.stop_bot())
    await asyncio.sleep(0.3)
    e2e.emu.store.downloads_open.set()
    await asyncio.wait_for(stopping, WAIT)
