"""Clicks in this process on jobs another process runs, on one PostgreSQL database.

The world's bot is the process that receives the clicks; a second runner on a store of its own
(the same database, the same video service) is the process that accepted and runs the job.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from bot.jobs.runner import JobRunner, utcnow
from bot.models import JobRecord, JobState, NewJob
from bot.runcomfy.client import RunComfyClient
from bot.store import Store
from cogs.animate.buttons import CancelButton
from tests.harness.backends import Backend
from tests.harness.discord_fakes import eventually, member_saw
from tests.harness.worlds import TOKEN, World

pytestmark = pytest.mark.store_backends("postgres")

SUBMIT = "/v1/models/bytedance/seedance-1-0/lite/image-to-video"


@dataclass
class Process:
    store: Store
    runner: JobRunner


@asynccontextmanager
async def another_process(world: World, backend: Backend) -> AsyncIterator[Process]:
    """A second bot process's runner: its own store, its own leases, the same database."""
    async with aiohttp.ClientSession() as http, backend.open() as store:
        provider = RunComfyClient(http, token=TOKEN, base_url=world.rc.base_url)
        runner = JobRunner(config=world.bot.config, store=store, provider=provider, http=http)
        assert world.bot.notifier_for is not None
        await runner.resume(world.bot.notifier_for)
        try:
            yield Process(store, runner)
        finally:
            await runner.close()


async def accepted_there(world: World, other: Process, member: Any) -> JobRecord:
    """A request the other process accepted and shows, as its /animate would."""
    job = await other.store.reserve_request(
        NewJob(
            guild_id=world.channel.guild_id,
            channel_id=world.channel.id,
            member_id=member.id,
            prompt="a fox in the snow",
            image_url=world.image_url,
            last_frame_url=None,
            resolution="480p",
            duration=5,
        ),
        cost=1,
        role_ids=(),
        defaults=world.bot.config.quota.guild_defaults(),
        now=utcnow(),
        owner=other.runner.identity,
        lease_until=other.runner.lease_until(),
    )
    other.runner.hold(job.id)
    assert world.bot.notifier_for is not None
    notifier = world.bot.notifier_for(job)
    status = await notifier.post_status(job)  # type: ignore[attr-defined]
    await other.runner.shown_at(job.id, status.id)
    stored = await other.store.get_job(job.id)
    assert stored is not None
    if stored.state is JobState.PENDING_APPROVAL:
        other.runner.watch(stored, notifier)
    else:
        assert await other.runner.start(stored, notifier)
    return stored


def status_title(world: World, job: JobRecord) -> str:
    embed = world.channel.by_id(job.status_message_id or 0).current_embed()
    return "" if embed is None else str(embed.title)


@pytest.mark.settings(max_concurrent_jobs=1)
async def test_a_cancel_here_ends_a_job_waiting_in_another_process_s_line(
    world: World, backend: Backend
) -> None:
    world.rc.plan_next_job(queue_seconds=5.0)
    await world.animate(world.alice)
    await world.wait_for((await world.only_job()).id, JobState.QUEUED)  # the one slot
    async with another_process(world, backend) as other:
        job = await accepted_there(world, other, world.bob)

        async def waits_there() -> bool:
            return other.runner.slot_position(job.id) == 1

        await eventually(waits_there)
        interaction = world.interaction(world.bob)
        await CancelButton(job.id).callback(interaction)
        assert "Cancelled" in member_saw(interaction)[0]

        async def stopped_there() -> bool:
            return other.runner.active_jobs == 0

        await eventually(stopped_there)
        ended = await world.store.get_job(job.id)
        assert ended is not None
        assert (ended.state, ended.error) == (JobState.CANCELLED, "Cancelled by its requester.")
        ended = await world.wait_for(job.id, JobState.CANCELLED)
        assert "Cancelled" in status_title(world, ended)
        usage = await world.bot.guild_admin.usage(world.channel.guild_id, world.bob.id)
        assert (usage.member_used, usage.member_reserved) == (0, 0)
    # Only the first job was ever sent.
    assert world.rc.count("POST", SUBMIT) == 1


async def test_a_denial_here_updates_a_request_another_process_watches(
    world: World, backend: Backend
) -> None:
    guild = world.channel.guild_id
    await world.store.set_approvals(guild, True, by=world.mod.id)
    await world.store.set_guild_budget(guild, by=world.mod.id, member_credits=0)
    async with another_process(world, backend) as other:
        job = await accepted_there(world, other, world.bob)
        assert job.state is JobState.PENDING_APPROVAL
        result = await world.bot.runner.cancel(
            job.id, actor_id=world.mod.id, is_moderator=True, reason="Not in this channel."
        )
        assert result.name == "CANCELLED"
        ended = await world.wait_for(job.id, JobState.CANCELLED)
        assert ended.error == "A moderator denied this request: Not in this channel."
        # This process never watched the request; the member's status still says so.

        async def shown() -> bool:
            return "moderator" not in status_title(world, ended).lower()

        await eventually(shown)
        assert "Cancelled" in status_title(world, ended) or "Denied" in status_title(world, ended)
