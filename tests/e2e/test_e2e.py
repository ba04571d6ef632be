"""End to end: the real bot, started through `run_bot`, against the local Discord and RunComfy.

Everything goes over loopback sockets: discord.py's own gateway and REST client talk to the
Discord emulator, the bot's RunComfy client talks to the RunComfy emulator, which renders a
real H.264 video. The tests act as members do (run commands, press buttons) and check what
members see in the channel.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest

from bot.config import QuotaConfig
from bot.runcomfy.client import MODEL_PATH
from tests.harness.e2e import E2E, WAIT, custom_ids, embed_titles
from tests.harness.images import make_image

# Representative of the end-to-end tests, on both stores.
pytestmark = pytest.mark.store_backends("sqlite", "postgres")

SUBMIT_PATH = MODEL_PATH
CANCEL_PATH = re.compile(r"^/v1/requests/[^/]+/cancel$")


def submits(world: E2E) -> int:
    return world.runcomfy.count("POST", SUBMIT_PATH)


def cancels(world: E2E) -> int:
    return sum(
        1 for method, path in world.runcomfy.calls if method == "POST" and CANCEL_PATH.match(path)
    )


async def test_animate_posts_a_status_then_an_h264_video_pinging_only_the_requester(
    e2e: E2E, tmp_path: Path
) -> None:
    emu = e2e.emu
    handle = await e2e.animate("a fox leaps over the moon @everyone @here")

    # The member is answered privately, with a link to the job's status message.
    reply = await e2e.reply_text(handle)
    assert handle.ephemeral
    assert "on its way" in reply
    status = await e2e.wait_status()
    link = f"https://discord.com/channels/{emu.guild_id}/{emu.channel_id}/{status['id']}"
    assert link in reply
    assert status["content"] == f"Video for <@{emu.requester_id}>"
    assert emu.pinged_users(int(status["id"])) == []

    video = await e2e.wait_video()
    assert video["content"].startswith(f"<@{emu.requester_id}> your video is ready!")
    # The prompt is shown with the video as plain text, in the embed under it.
    assert "a fox leaps over the moon" in video["embeds"][0]["description"]
    # The prompt's @everyone and @here reach nobody: only the requester is pinged.
    assert video["mention_everyone"] is False
    assert emu.pinged_users(int(video["id"])) == [emu.requester_id]

    [attachment] = video["attachments"]
    assert attachment["content_type"] == "video/mp4"
    data = emu.attachment_bytes(int(attachment["id"]))
    assert data is not None and len(data) == attachment["size"]
    path = tmp_path / attachment["filename"]
    path.write_bytes(data)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frame = next(container.decode(stream))
        assert (frame.width, frame.height) == (96, 64)

    done = await e2e.wait_status(lambda m: "ready" in embed_titles(m))
    assert done["id"] == status["id"]
    assert custom_ids(done) == []  # no Cancel button on a finished job
    fields = {f["name"]: f["value"] for f in done["embeds"][0]["fields"]}
    video_link = f"https://discord.com/channels/{emu.guild_id}/{emu.channel_id}/{video['id']}"
    assert fields["Video"] == f"[Jump to the video]({video_link})"
    assert len(e2e.status_messages()) == 1
    assert len(e2e.videos()) == 1
    assert submits(e2e) == 1
    [submitted] = e2e.runcomfy.submitted
    assert submitted["prompt"] == "a fox leaps over the moon @everyone @here"


async def test_a_too_small_image_is_refused_privately_with_the_rule_and_its_value(
    e2e: E2E,
) -> None:
    handle = await e2e.animate(image=make_image(200, 200))

    reply = await e2e.reply_text(handle)
    assert handle.ephemeral
    assert "200" in reply
    assert "width" in reply and "height" in reply
    assert "greater than 300 px" in reply
    assert submits(e2e) == 0
    assert e2e.emu.channel_messages() == []
    fields = await e2e.usage_fields()
    assert fields["Used today"].startswith("0 credits")


@pytest.mark.settings(quota=QuotaConfig(member_credits=1))
async def test_when_credits_run_out_the_next_job_is_refused_with_what_is_left_and_when(
    e2e: E2E,
) -> None:
    await e2e.animate("first light")
    await e2e.wait_video()
    await e2e.wait_status(lambda m: "ready" in embed_titles(m))

    handle = await e2e.animate("second light")
    reply = await e2e.reply_text(handle)
    assert handle.ephemeral
    assert "Not enough credits" in reply
    assert "this video costs 1 credit" in reply
    assert "0 credits left of 1 today" in reply
    tomorrow = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    tomorrow += timedelta(days=1)
    assert f"reset <t:{int(tomorrow.timestamp())}:R>" in reply
    assert "Nothing was charged" in reply
    assert submits(e2e) == 1
    assert len(e2e.status_messages()) == 1

    fields = await e2e.usage_fields()
    assert fields["Used today"] == "1 credit of 1"
    assert fields["Left"] == "0 credits"


async def test_the_requester_cancels_a_queued_job_and_is_charged_nothing(e2e: E2E) -> None:
    e2e.runcomfy.plan_next_job(queue_seconds=60)
    await e2e.animate("a very long queue")
    status, cancel = await e2e.wait_queued()

    click = await e2e.emu.click_button(int(status["id"]), cancel)
    assert "Cancelled" in await e2e.reply_text(click)
    assert click.ephemeral

    final = await e2e.wait_status(lambda m: "Cancelled" in embed_titles(m))
    assert custom_ids(final) == []
    assert cancels(e2e) == 1
    assert e2e.videos() == []
    fields = await e2e.usage_fields()
    assert fields["Used today"].startswith("0 credits")
    assert "In progress" not in fields


async def test_someone_else_cannot_cancel_and_the_job_goes_on(e2e: E2E) -> None:
    emu = e2e.emu
    e2e.runcomfy.plan_next_job(queue_seconds=1.0)
    await e2e.animate("not yours to stop")
    status, cancel = await e2e.wait_queued()

    click = await emu.click_button(int(status["id"]), cancel, user_id=emu.member_id)
    refusal = await e2e.reply_text(click)
    assert click.ephemeral
    assert "Only the member who asked for this video" in refusal
    refusal_id = click.original()["id"]
    assert refusal_id in [m["id"] for m in emu.ephemeral_messages(emu.member_id)]
    assert refusal_id not in [m["id"] for m in emu.ephemeral_messages(emu.requester_id)]

    video = await e2e.wait_video()
    assert emu.pinged_users(int(video["id"])) == [emu.requester_id]
    await e2e.wait_status(lambda m: "ready" in embed_titles(m))
    assert cancels(e2e) == 0


@pytest.mark.settings(interaction_token_lifetime=1.0, run_seconds=2.5)
async def test_a_job_outliving_the_interaction_token_still_delivers(e2e: E2E) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    handle = await e2e.animate("slow and steady")
    assert "on its way" in await e2e.reply_text(handle)

    video = await e2e.wait_video()
    assert loop.time() - started > 1.0  # the premise: the token had expired by now
    # The token died long before the video was ready; nothing was sent with it after that.
    assert handle.rejected == []
    assert e2e.emu.pinged_users(int(video["id"])) == [e2e.emu.requester_id]
    await e2e.wait_status(lambda m: "ready" in embed_titles(m))


@pytest.mark.settings(upload_limit=64 * 1024)
async def test_a_video_over_the_upload_limit_is_posted_as_a_link(e2e: E2E) -> None:
    emu = e2e.emu
    big = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(100 * 1024)
    e2e.runcomfy.plan_next_job(video_bytes=big)
    await e2e.animate("too big to upload")

    message = await emu.wait_for_message(
        lambda m: "your video is ready" in str(m.get("content")), WAIT, channel_id=emu.channel_id
    )
    content = message["content"]
    assert message["attachments"] == []
    assert "over this channel's upload limit of 0.1 MiB" in content
    assert "it may expire" in content
    [url] = re.findall(r"http://\S+", content)
    assert url.startswith(e2e.runcomfy.cdn_url)
    assert emu.pinged_users(int(message["id"])) == [emu.requester_id]
    await e2e.wait_status(lambda m: "ready" in embed_titles(m))


async def test_usage_shows_credits_used_left_and_the_reset(e2e: E2E) -> None:
    fields = await e2e.usage_fields()
    assert fields["Used today"] == "0 credits of 10"
    assert fields["Left"] == "10 credits"
    assert fields["Server pool"] == "0 credits used of 100 · 100 credits left"

    await e2e.animate("one for the books", resolution="720p")
    await e2e.wait_video()
    await e2e.wait_status(lambda m: "ready" in embed_titles(m))

    fields = await e2e.usage_fields()
    assert fields["Used today"] == "2 credits of 10"
    assert fields["Left"] == "8 credits"
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    reset = int((midnight + timedelta(days=1)).timestamp())
    assert fields["Resets"] == f"<t:{reset}:R> (<t:{reset}:f>)"
    # Another member's usage is their own.
    other = await e2e.usage_fields(e2e.emu.member_id)
    assert other["Used today"] == "0 credits of 10"


async def test_commands_are_synced_once_and_a_restart_does_not_sync_again(e2e: E2E) -> None:
    emu = e2e.emu
    assert emu.command_sync_count == 1
    before = sorted(c["name"] for c in emu.registered_commands())
    assert {"animate", "usage"} <= set(before)

    [first_sync] = [r for r in emu.requests if r.method == "PUT"]
    assert first_sync.route.endswith("/commands")

    await e2e.stop_bot()
    seen = len(emu.requests)
    await e2e.start_bot()

    # Same commands, same database: the second start makes no PUT to the commands route.
    after = emu.requests[seen:]
    assert any(r.route == "/users/@me" for r in after)  # it did log in again
    assert [r for r in after if r.method == "PUT"] == []
    assert emu.command_sync_count == 1
    assert sorted(c["name"] for c in emu.registered_commands()) == before
    # The restarted bot answers, on the same database.
    fields = await e2e.usage_fields()
    assert fields["Left"] == "10 credits"
