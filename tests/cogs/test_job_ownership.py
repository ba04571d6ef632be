"""Every open job has a live owner: faults nobody foresaw, resumes and stops never strand a job.

Driven through the real runner, store and RunComfy emulator; what is asserted is what the
member sees and what they are charged.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.models import JobState
from cogs.animate import launcher
from tests.harness.discord_fakes import eventually, member_saw
from tests.harness.worlds import World

# Leases, the runner, quotas and approvals: the same flows on both stores.
pytestmark = pytest.mark.store_backends("sqlite", "postgres")


async def settled(world: World, job_id: int, *states: JobState) -> None:
    async def done() -> bool:
        job = await world.store.get_job(job_id)
        return job is not None and job.state in states

    await eventually(done, within=20)


async def test_a_provider_answer_nobody_foresaw_never_strands_the_job(world: World) -> None:
    # A queue position of 5,000 digits: Python refuses to read it as a number, an error that
    # is not the provider client's own. Once, then the provider answers properly again.
    world.rc.plan_next_job(queue_seconds=0.3, run_seconds=0.3)
    world.rc.faults.add(route="result", kind="json", body=ABSURD, times=1)
    await world.animate(world.alice)
    job = await world.only_job()
    await settled(world, job.id, JobState.DELIVERED)
    usage = await world.bot.guild_admin.usage(world.channel.guild_id, world.alice.id)
    assert (usage.member_used, usage.member_reserved) == (1, 0)
    assert len(world.rc.submitted) == 1


async def test_a_job_that_keeps_crashing_is_ended_plainly_and_refunded(world: World) -> None:
    world.rc.plan_next_job(queue_seconds=30, run_seconds=0.3)
    world.rc.faults.add(route="result", kind="json", body=ABSURD, times=50)
    await world.animate(world.alice)
    job = await world.only_job()
    await settled(world, job.id, JobState.FAILED)
    ended = await world.store.get_job(job.id)
    assert ended is not None and ended.error is not None
    assert "kept running into a problem" in ended.error
    assert ended.request_id is not None and ended.request_id in ended.error
    usage = await world.bot.guild_admin.usage(world.channel.guild_id, world.alice.id)
    assert (usage.member_used, usage.member_reserved, usage.member_active_jobs) == (0, 0, 0)
    assert len(world.rc.submitted) == 1


async def test_in_a_channel_that_takes_posts_a_job_starts_before_its_status_is_up(
    world: World,
) -> None:
    world.rc.plan_next_job(queue_seconds=30, run_seconds=0.1)
    await world.animate(world.alice)
    # The bot's Discord budget is spent: the next post waits for its turn.
    budget = world.bot.discord_budget
    shares = [await budget.take(0) for _ in range(budget.rate)]
    world.rc.plan_next_job(queue_seconds=30, run_seconds=0.1)
    asking = asyncio.create_task(world.animate(world.bob))

    async def submitted_and_polled() -> bool:
        # Two polls of the job: whatever the first one found has been handed to its notifier.
        jobs = await world.store.recent_jobs(world.channel.guild_id, world.bob.id)
        sent = [job.request_id for job in jobs if job.request_id]
        asked = [r for r in world.rc.requests if sent and sent[0] in r.path]
        return len(world.rc.submitted) == 2 and len(asked) >= 2

    await eventually(submitted_and_polled)
    assert len(world.channel.messages) == 1  # bob's status is not up yet
    for share in shares:
        budget.release(share, sent=False)
    interaction = await asking
    [job] = await world.store.recent_jobs(world.channel.guild_id, world.bob.id)
    assert job.status_message_id is not None
    assert f"/{job.status_message_id}" in member_saw(interaction)[-1]
    status = world.channel.by_id(job.status_message_id)
    # Posted as the job stands by then, in the queue: no edit was spent on an older state.
    assert status.embed is not None and "queue" in (status.embed.title or "").lower()
    assert status.edits == []
    assert len(world.rc.submitted) == 2


async def test_a_job_started_at_once_is_posted_showing_its_submission(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # However slow this machine is, the status waits for the submission.
    monkeypatch.setattr(launcher, "SUBMIT_SETTLE", 60.0)
    world.rc.plan_next_job(queue_seconds=30, run_seconds=0.1)
    await world.animate(world.alice)
    world.rc.plan_next_job(queue_seconds=30, run_seconds=0.1)
    interaction = await world.animate(world.bob)
    [job] = await world.store.recent_jobs(world.channel.guild_id, world.bob.id)
    assert f"/{job.status_message_id}" in member_saw(interaction)[-1]
    status = world.channel.by_id(job.status_message_id or 0)
    # Its status waited for the submission (a moment): one post, never "sending" then queued.
    assert status.embed is not None and "queue" in (status.embed.title or "").lower()


async def test_a_status_message_that_times_out_releases_the_job(world: World) -> None:
    world.channel.fail_sends_with = TimeoutError()
    interaction = await world.animate(world.alice)
    assert "Nothing was charged" in member_saw(interaction)[-1]
    job = await world.only_job()
    assert job.state is JobState.FAILED
    usage = await world.bot.guild_admin.usage(world.channel.guild_id, world.alice.id)
    assert (usage.member_used, usage.member_reserved) == (0, 0)
    # Nothing runs it later either: the job is settled, not waiting for a sweep.
    await asyncio.sleep(1.5)
    assert world.rc.submitted == []


@pytest.mark.settings(job_deadline=3.0)
async def test_a_job_the_provider_finished_before_the_deadline_is_delivered(world: World) -> None:
    # The provider finishes at once, but the bot cannot see it until past the deadline (two
    # status calls hang past the read timeout): one last look finds the video.
    world.rc.plan_next_job(queue_seconds=0.1, run_seconds=0.1)
    world.rc.faults.add(route="result", kind="hang", seconds=5.0, times=2)
    await world.animate(world.alice)
    job = await world.only_job()
    await settled(world, job.id, JobState.DELIVERED, JobState.TIMED_OUT)
    done = await world.store.get_job(job.id)
    assert done is not None and done.state is JobState.DELIVERED
    assert len(world.rc.submitted) == 1


ABSURD = {"status": "in_queue", "queue_position": "9" * 5000}


async def test_a_cut_video_download_is_tried_again(world: World) -> None:
    world.rc.plan_next_job(queue_seconds=0.1, run_seconds=0.1)
    # aiohttp itself sends a GET again once when the connection drops: cut it twice.
    world.rc.faults.add(route="video", kind="drop", times=2)
    await world.animate(world.alice)
    job = await world.only_job()
    await settled(world, job.id, JobState.DELIVERED, JobState.FAILED)
    done = await world.store.get_job(job.id)
    assert done is not None and done.state is JobState.DELIVERED
    assert done.result_message_id in world.channel.file_bytes  # the file itself, not a link


async def test_a_video_that_cannot_be_fetched_is_delivered_as_its_link(world: World) -> None:
    world.rc.plan_next_job(queue_seconds=0.1, run_seconds=0.1)
    world.rc.faults.add(route="video", kind="http", status=503, times=10)
    await world.animate(world.alice)
    job = await world.only_job()
    await settled(world, job.id, JobState.DELIVERED, JobState.FAILED)
    done = await world.store.get_job(job.id)
    assert done is not None and done.state is JobState.DELIVERED
    post = world.channel.by_id(done.result_message_id or 0)
    assert "could not be fetched" in (post.content or "")
    assert done.video_url is not None and done.video_url in (post.content or "")
    usage = await world.bot.guild_admin.usage(world.channel.guild_id, world.alice.id)
    assert usage.member_used == job.credits
