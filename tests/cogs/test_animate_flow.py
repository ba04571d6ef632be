"""The /animate and /usage cogs driven with autospecced Discord objects.

The engine under them is real: the RunComfy emulator over HTTP, a real SQLite file, the real
job runner. Only Discord's side is an autospec.
"""

from __future__ import annotations

from typing import Any

import av
import discord
import pytest

from bot.config import QuotaConfig
from bot.models import JobState
from cogs.animate import notifier
from cogs.animate.buttons import CancelButton, DeleteButton, RetryButton
from tests.harness.discord_fakes import (
    Member,
    answered,
    eventually,
    invoke,
    make_attachment,
    member_saw,
)
from tests.harness.images import make_image
from tests.harness.videos import duration_seconds, make_video
from tests.harness.worlds import World

# The charge-or-release flows, on both stores too.
BOTH_STORES = pytest.mark.store_backends("sqlite", "postgres")


@BOTH_STORES
async def test_accepted_job_is_delivered_as_a_file_and_charged(world: World) -> None:
    interaction = await world.animate(world.alice, prompt="  waves crash @everyone  ")
    interaction.response.defer.assert_awaited_once()  # type: ignore[attr-defined]
    assert "on its way" in member_saw(interaction)[0]

    job = await world.wait_for((await world.only_job()).id, JobState.DELIVERED)
    assert job.request_id is not None
    assert job.prompt == "waves crash @everyone"
    assert world.rc.count("POST", "/v1/models/bytedance/seedance-1-0/lite/image-to-video") == 1

    status, video = world.channel.messages
    # The status message is an ordinary channel message that ends up saying it is done.
    final = status.current_embed()
    assert final is not None and final.title is not None and "ready" in final.title
    assert status.current_view() is None
    assert status.allowed_mentions is not None and not status.allowed_mentions.users
    # The video is a new message pinging only the requester, with an mp4 that plays.
    assert video.content is not None and f"<@{world.alice.id}>" in video.content
    assert video.file is not None and video.file.filename.endswith(".mp4")
    mentions = video.allowed_mentions
    assert mentions is not None and mentions.everyone is False and mentions.roles is False
    assert [u.id for u in mentions.users] == [world.alice.id]  # type: ignore[union-attr]
    with av.open(__import__("io").BytesIO(world.channel.file_bytes[video.id])) as container:
        assert container.streams.video[0].codec_context.name == "h264"

    usage = await world.bot.guild_admin.usage(world.channel.guild_id, world.alice.id)
    assert (usage.member_used, usage.member_reserved) == (1, 0)


async def test_a_video_posted_at_once_spends_no_edit_on_posting_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # However slow this machine is, the post is done before the status would say "posting".
    monkeypatch.setattr(notifier, "POSTING_SETTLE", 60.0)
    await world.animate(world.alice)
    job = await world.wait_for((await world.only_job()).id, JobState.DELIVERED)
    status = world.channel.by_id(job.status_message_id or 0)
    shown = [edit["embed"].title for edit in status.edits if edit.get("embed") is not None]
    assert shown and "ready" in shown[-1]
    assert not any("Posting" in title for title in shown)


async def test_the_status_message_shows_the_queue_and_a_cancel_button(world: World) -> None:
    world.rc.plan_next_job(queue_seconds=3.0, run_seconds=0.2)
    await world.animate(world.alice)
    job = await world.wait_for((await world.only_job()).id, JobState.QUEUED)
    status = world.channel.by_id(job.status_message_id or 0)

    async def shown() -> bool:
        embed = status.current_embed()
        queue = {f.name: f.value for f in embed.fields}.get("Queue") if embed else None
        return status.current_view() is not None and queue is not None

    await eventually(shown)  # the queued state's edit has landed
    view = status.current_view()
    assert view is not None
    [button] = view.children
    assert type(button).__name__ == CancelButton.__name__
    assert (button.item.custom_id or "").startswith(f"job:cancel:{job.id}")
    embed = status.current_embed()
    assert embed is not None
    fields = {f.name: f.value for f in embed.fields}
    assert "in line" in (fields.get("Queue") or "")
    # The requester's credits left are private (their acknowledgement), never on the status.
    assert "Your quota" not in fields
    [kept] = world.channel.attachments[status.id]
    assert embed.thumbnail.url == kept.url  # the first frame, kept on the status message


async def click_cancel(world: World, job_id: int, member: Member) -> list[str]:
    interaction = world.interaction(member)
    await CancelButton(job_id).callback(interaction)
    return member_saw(interaction)


@BOTH_STORES
async def test_cancel_by_the_requester_releases_the_credits(world: World) -> None:
    world.rc.plan_next_job(queue_seconds=5.0)
    await world.animate(world.alice)
    job = await world.wait_for((await world.only_job()).id, JobState.QUEUED)

    assert "Only the member" in (await click_cancel(world, job.id, world.bob))[0]
    assert (await world.store.get_job(job.id)).state is JobState.QUEUED  # type: ignore[union-attr]

    assert "Cancelled" in (await click_cancel(world, job.id, world.alice))[0]
    job = await world.wait_for(job.id, JobState.CANCELLED)
    status = world.channel.by_id(job.status_message_id or 0)
    embed = status.current_embed()
    assert embed is not None and "Cancelled" in (embed.title or "")
    assert status.current_view() is None
    usage = await world.bot.guild_admin.usage(world.channel.guild_id, world.alice.id)
    assert (usage.member_used, usage.member_reserved) == (0, 0)
    assert len(world.channel.messages) == 1  # no video posted


async def test_a_moderator_can_cancel_someone_elses_job(world: World) -> None:
    world.rc.plan_next_job(queue_seconds=5.0)
    await world.animate(world.alice)
    job = await world.wait_for((await world.only_job()).id, JobState.QUEUED)
    assert "Cancelled" in (await click_cancel(world, job.id, world.mod))[0]
    job = await world.wait_for(job.id, JobState.CANCELLED)
    assert job.error == "Cancelled by a moderator."


async def test_a_running_job_cannot_be_cancelled(world: World) -> None:
    world.rc.plan_next_job(queue_seconds=0.0, run_seconds=3.0)
    await world.animate(world.alice)
    job = await world.wait_for((await world.only_job()).id, JobState.RUNNING)
    assert "can no longer be cancelled" in (await click_cancel(world, job.id, world.alice))[0]


@BOTH_STORES
async def test_a_provider_failure_releases_the_credits_and_says_why(world: World) -> None:
    world.rc.plan_next_job("failed", error={"message": "GPU on fire"})
    await world.animate(world.alice)
    job = await world.wait_for((await world.only_job()).id, JobState.FAILED)
    assert job.request_id is not None
    status = world.channel.by_id(job.status_message_id or 0)
    embed = status.current_embed()
    assert embed is not None
    text = " ".join(f.value or "" for f in embed.fields)
    assert "could not make this video" in text
    assert "GPU on fire" not in text  # raw provider errors stay in the log
    assert job.request_id in (embed.footer.text or "")
    usage = await world.bot.guild_admin.usage(world.channel.guild_id, world.alice.id)
    assert (usage.member_used, usage.member_reserved) == (0, 0)


async def test_a_video_over_the_upload_limit_is_posted_as_a_link(world: World) -> None:
    world.rc.plan_next_job(video_bytes=b"\0\0\0\x18ftypisom" + b"\0" * 4084)  # an MP4's head
    interaction = world.interaction(world.alice, filesize_limit=1024)
    await invoke(world.bot.tree, interaction, "animate", image=world.image(), prompt="big one")
    job = await world.wait_for((await world.only_job()).id, JobState.DELIVERED)
    video = world.channel.messages[-1]
    assert video.file is None
    assert video.content is not None and job.video_url is not None
    assert job.video_url in video.content and "may expire" in video.content
    usage = await world.bot.guild_admin.usage(world.channel.guild_id, world.alice.id)
    assert usage.member_used == 1


async def test_a_413_on_upload_falls_back_to_the_link(world: World) -> None:
    world.channel.upload_limit = 100  # Discord refuses, although the interaction said it fits
    await world.animate(world.alice)
    job = await world.wait_for((await world.only_job()).id, JobState.DELIVERED)
    video = world.channel.messages[-1]
    assert video.file is None and job.video_url in (video.content or "")


async def test_rejected_images_report_every_rule_and_change_nothing(world: World) -> None:
    small = world.image(make_image(250, 700))
    last = make_attachment(world.image_url, b"not an image at all", filename="x.png")
    interaction = await world.animate(world.alice, image=small, last_frame=last)
    [text] = member_saw(interaction)
    assert "250 px" in text  # the actual width, next to the rule it breaks
    assert "Last frame" in text
    assert await world.store.recent_jobs(world.channel.guild_id, world.alice.id) == []
    assert world.rc.submitted == []
    assert world.channel.messages == []


async def test_an_oversized_attachment_is_refused_without_downloading(world: World) -> None:
    huge = world.image()
    huge.size = 30_000_000  # type: ignore[misc]
    interaction = await world.animate(world.alice, image=huge)
    assert "30 MB" in member_saw(interaction)[0]
    huge.read.assert_not_awaited()  # type: ignore[attr-defined]


async def test_blank_prompt_is_refused(world: World) -> None:
    interaction = await world.animate(world.alice, prompt="   ")
    assert "prompt" in member_saw(interaction)[0].lower()
    assert world.rc.submitted == []


async def test_missing_channel_permissions_are_named(world: World) -> None:
    interaction = world.interaction(
        world.alice, app_permissions=discord.Permissions(view_channel=True, send_messages=True)
    )
    await invoke(world.bot.tree, interaction, "animate", image=world.image(), prompt="hi")
    text = member_saw(interaction)[0]
    assert "Embed Links" in text and "Attach Files" in text
    assert world.rc.submitted == []


async def test_a_status_message_that_cannot_be_posted_charges_nothing(world: World) -> None:
    world.channel.forbidden = True
    interaction = await world.animate(world.alice)
    assert "Nothing was charged" in member_saw(interaction)[-1]
    assert world.rc.submitted == []
    usage = await world.bot.guild_admin.usage(world.channel.guild_id, world.alice.id)
    assert (usage.member_used, usage.member_reserved) == (0, 0)


@BOTH_STORES
@pytest.mark.settings(quota=QuotaConfig(member_credits=4))
async def test_quota_refusal_says_what_is_left_and_charges_nothing(world: World) -> None:
    interaction = await world.animate(world.alice, resolution=_choice("1080p"))
    text = member_saw(interaction)[0]
    assert "costs 5 credits" in text and "4 credits left" in text and "<t:" in text
    assert world.rc.submitted == []


@BOTH_STORES
@pytest.mark.settings(quota=QuotaConfig(member_concurrent_jobs=1))
async def test_one_job_at_a_time_per_member(world: World) -> None:
    world.rc.plan_next_job(queue_seconds=5.0)
    await world.animate(world.alice)
    await world.wait_for((await world.only_job()).id, JobState.QUEUED)
    second = await world.animate(world.alice)
    assert "already have 1" in member_saw(second)[0]
    assert len(world.rc.submitted) == 1


async def test_last_frame_at_1080p_gets_a_note(world: World) -> None:
    interaction = await world.animate(
        world.alice, last_frame=world.image(), resolution=_choice("1080p")
    )
    assert "1080p" in member_saw(interaction)[0]
    await world.wait_for((await world.only_job()).id, JobState.DELIVERED)
    submitted = world.rc.submitted[0]
    assert submitted["resolution"] == "1080p"
    assert submitted["first_frame_image_url"] == world.image_url


async def test_dm_is_refused(world: World) -> None:
    interaction = world.interaction(world.alice, in_guild=False)
    await invoke(world.bot.tree, interaction, "animate", image=world.image(), prompt="hi")
    assert "server" in member_saw(interaction)[0]


@BOTH_STORES
async def test_usage_shows_credits_and_guards_other_members(world: World) -> None:
    await world.animate(world.alice)
    await world.wait_for((await world.only_job()).id, JobState.DELIVERED)

    own = world.interaction(world.alice)
    await invoke(world.bot.tree, own, "usage")
    embed = own.response.send_message.await_args.kwargs["embed"]  # type: ignore[attr-defined]
    fields = {f.name: f.value for f in embed.fields}
    assert fields["Used today"].startswith("1 credit")
    assert fields["Left"] == "9 credits"
    assert "<t:" in fields["Resets"]
    assert "1 credit used of 100" in fields["Server pool"]

    alice_user = own.user
    nosy = world.interaction(world.bob)
    await invoke(world.bot.tree, nosy, "usage", member=alice_user)
    assert "Only moderators" in member_saw(nosy)[0]

    mod = world.interaction(world.mod)
    await invoke(world.bot.tree, mod, "usage", member=alice_user)
    embed = mod.response.send_message.await_args.kwargs["embed"]  # type: ignore[attr-defined]
    assert "alice" in (embed.title or "")


def _choice(value: str) -> discord.app_commands.Choice[str]:
    return discord.app_commands.Choice(name=value, value=value)


@pytest.mark.settings()
async def test_a_refused_key_pauses_new_requests_without_charging(world: World) -> None:
    world.rc.faults.add(route="submit", kind="http", status=401, message="bad token")
    await world.animate(world.alice)
    job = await world.wait_for((await world.only_job()).id, JobState.FAILED)
    assert "key was refused" in (job.error or "")

    world.rc.faults.add(route="model", kind="http", status=401, times=10)
    refused = await world.animate(world.bob)
    assert "refusing the bot's account" in member_saw(refused)[0]
    assert len(world.rc.submitted) == 0
    assert await world.store.recent_jobs(world.channel.guild_id, world.bob.id) == []

    # Once the service answers again, the probe closes the breaker and jobs flow.
    world.rc.faults.clear()
    accepted = await world.animate(world.bob)
    assert "on its way" in member_saw(accepted)[0]


async def test_retry_runs_the_same_inputs_again_with_freshly_signed_frames(world: World) -> None:
    await world.animate(world.alice, prompt="a kite in the wind")
    first = await world.wait_for((await world.only_job()).id, JobState.DELIVERED)
    status = world.channel.by_id(first.status_message_id or 0)
    kept = world.channel.attachments[status.id]
    assert [a.filename for a in kept] == ["first-frame.png"]
    # The thumbnail shows the copy kept on the status message, not the expiring upload.
    embed = status.current_embed()
    assert embed is not None and embed.thumbnail.url == kept[0].url
    video = world.channel.messages[-1]
    assert video.view is not None
    labels = [getattr(item, "item", item).label for item in video.view.children]
    assert labels == ["Retry", "Remix", "Delete"]

    nosy = world.interaction(world.bob)
    await RetryButton(first.id).callback(nosy)
    assert "Only the member" in (await answered(nosy))[0]

    again = world.interaction(world.alice)
    await RetryButton(first.id).callback(again)
    assert "on its way" in (await answered(again))[0]
    jobs = await world.store.recent_jobs(world.channel.guild_id, world.alice.id)
    second = await world.wait_for(max(j.id for j in jobs), JobState.DELIVERED)
    assert second.prompt == first.prompt and second.resolution == first.resolution
    assert second.image_url == kept[0].url
    assert world.rc.submitted[-1]["first_frame_image_url"] == kept[0].url
    usage = await world.bot.guild_admin.usage(world.channel.guild_id, world.alice.id)
    assert usage.member_used == 2


async def test_delete_removes_the_video_for_its_requester_only(world: World) -> None:
    await world.animate(world.alice)
    job = await world.wait_for((await world.only_job()).id, JobState.DELIVERED)
    video = world.channel.messages[-1]

    nosy = world.interaction(world.bob)
    nosy.message = world.channel.message_object(video.id)
    await DeleteButton(job.id).callback(nosy)
    assert "Only the member" in member_saw(nosy)[0]
    assert not video.deleted

    owner = world.interaction(world.alice)
    owner.message = world.channel.message_object(video.id)
    await DeleteButton(job.id).callback(owner)
    assert member_saw(owner)[-1] == "Deleted."
    assert video.deleted


@pytest.mark.parametrize(
    ("outcome", "told"),
    [
        ("video_404", "could not be fetched"),
        ("missing_video", "returned no video"),
        ("unknown_state", "does not understand"),
    ],
)
async def test_provider_outcomes_that_fail_release_the_credits(
    world: World, outcome: str, told: str
) -> None:
    world.rc.plan_next_job(outcome)  # type: ignore[arg-type]
    await world.animate(world.alice)
    job = await world.wait_for((await world.only_job()).id, JobState.FAILED)
    assert told in (job.error or "")
    assert job.request_id is not None
    usage = await world.bot.guild_admin.usage(world.channel.guild_id, world.alice.id)
    assert (usage.member_used, usage.member_reserved) == (0, 0)
    assert len(world.channel.messages) == 1  # the status message only, no video


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "http", "status": 503, "times": 2},
        {"kind": "http", "status": 429, "headers": {"Retry-After": "1"}},
        {"kind": "drop", "times": 3},
        {"kind": "hang", "seconds": 3.0},
        {"kind": "error_code", "error_code": 500001},
    ],
    ids=["5xx-run", "429-retry-after", "dropped", "hang-past-timeout", "200-with-error-code"],
)
async def test_transient_polling_faults_still_deliver_once(
    world: World, fault: dict[str, Any]
) -> None:
    world.rc.plan_next_job(queue_seconds=0.0, run_seconds=0.0)
    world.rc.faults.add(route="result", **fault)
    await world.animate(world.alice)
    job = await world.wait_for((await world.only_job()).id, JobState.DELIVERED)
    assert job.state is JobState.DELIVERED
    assert len([m for m in world.channel.messages if m.file is not None]) == 1
    assert len(world.rc.submitted) == 1


async def test_jobs_lists_the_callers_recent_videos(world: World) -> None:
    world.rc.plan_next_job("failed")
    await world.animate(world.alice, prompt="first try")
    await world.wait_for((await world.only_job()).id, JobState.FAILED)
    await world.animate(world.alice, prompt="second try")
    jobs = await world.store.recent_jobs(world.channel.guild_id, world.alice.id)
    await world.wait_for(max(j.id for j in jobs), JobState.DELIVERED)

    listing = world.interaction(world.alice)
    await invoke(world.bot.tree, listing, "jobs")
    embed = listing.response.send_message.await_args.kwargs["embed"]  # type: ignore[attr-defined]
    lines = (embed.description or "").split("\n")
    assert "delivered" in lines[0] and "1 credit" in lines[0] and "[video]" in lines[0]
    assert "second try" in lines[1]
    assert "failed" in lines[2] and "no charge" in lines[2]

    other = world.interaction(world.bob)
    await invoke(world.bot.tree, other, "jobs")
    embed = other.response.send_message.await_args.kwargs["embed"]  # type: ignore[attr-defined]
    assert "No videos yet" in (embed.description or "")


async def test_a_video_over_the_upload_limit_is_re_encoded_to_fit(world: World) -> None:
    original = make_video(seconds=2.0)
    limit = len(original) // 3
    world.rc.plan_next_job(video_bytes=original)
    interaction = world.interaction(world.alice, filesize_limit=limit)
    await invoke(world.bot.tree, interaction, "animate", image=world.image(), prompt="noisy")
    await world.wait_for((await world.only_job()).id, JobState.DELIVERED)
    video = world.channel.messages[-1]
    assert video.file is not None and "re-encoded" in (video.content or "")
    posted = world.channel.file_bytes[video.id]
    assert len(posted) <= limit
    assert abs(duration_seconds(posted) - 2.0) < 0.1
    usage = await world.bot.guild_admin.usage(world.channel.guild_id, world.alice.id)
    assert usage.member_used == 1
