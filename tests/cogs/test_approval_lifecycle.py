"""Requests over a member's cap: they expire, are admitted anew when approved, leave nothing."""

from __future__ import annotations

import gc
import sys
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.config import QuotaConfig
from bot.models import JobState, NewJob
from cogs.moderation.buttons import ApproveButton, DenyButton
from tests.harness.discord_fakes import answered, eventually, member_saw, opened_modal, submit_modal
from tests.harness.worlds import World

# Leases, the runner, quotas and approvals: the same flows on both stores.
pytestmark = pytest.mark.store_backends("sqlite", "postgres")


async def open_the_queue(world: World) -> None:
    guild = world.channel.guild_id
    await world.store.set_approvals(guild, True, by=world.mod.id)
    await world.store.set_modlog_channel(guild, world.modlog.id, by=world.mod.id)


@pytest.mark.settings(quota=QuotaConfig(member_credits=0, approval_hours=0.0005))
async def test_an_unanswered_request_expires_and_everyone_is_told(world: World) -> None:
    await open_the_queue(world)
    await world.animate(world.alice)
    [job] = await world.store.recent_jobs(world.channel.guild_id, world.alice.id)
    assert job.state is JobState.PENDING_APPROVAL
    [request] = world.modlog.messages

    job = await world.wait_for(job.id, JobState.CANCELLED)
    approval = await world.store.get_approval(job.id)
    assert approval is not None and approval.approval.decision == "expired"

    def status_title() -> str:
        status = world.channel.by_id(job.status_message_id or 0).current_embed()
        return (status.title or "") if status is not None else ""

    async def everyone_told() -> bool:
        told = [m for m in world.channel.messages if m.content and "in time" in m.content]
        # The status message follows at the channel's pace.
        return bool(told) and bool(request.edits) and "Cancelled" in status_title()

    await eventually(everyone_told)
    told = next(m for m in world.channel.messages if m.content and "in time" in m.content)
    assert f"<@{world.alice.id}>" in (told.content or "")
    assert [u.id for u in told.allowed_mentions.users] == [world.alice.id]  # type: ignore[union-attr]
    assert "Nothing was charged" in (told.content or "")
    # The mod-log request says what became of it and loses its buttons.
    assert request.current_view() is None
    assert "Expired" in (request.edits[-1].get("content") or "")
    usage = await world.bot.guild_admin.usage(world.channel.guild_id, world.alice.id)
    assert (usage.server_used, usage.server_reserved) == (0, 0)


@pytest.mark.settings(quota=QuotaConfig(member_credits=0))
async def test_an_approval_in_the_next_period_charges_the_current_pool(world: World) -> None:
    await open_the_queue(world)
    guild = world.channel.guild_id
    yesterday = datetime.now(UTC) - timedelta(days=1)
    job = await world.store.reserve_request(
        NewJob(
            guild_id=guild,
            channel_id=world.channel.id,
            member_id=world.alice.id,
            prompt="asked yesterday",
            image_url=world.image_url,
            last_frame_url=None,
            resolution="480p",
            duration=5,
        ),
        cost=1,
        role_ids=(),
        defaults=world.bot.guild_admin.defaults,
        now=yesterday,
    )
    assert job.state is JobState.PENDING_APPROVAL
    request = await world.modlog.partial().send("approval needed")
    await world.store.set_approval_message(job.id, request.id)

    mod = world.interaction(world.mod)
    mod.message = world.modlog.message_object(request.id)
    await ApproveButton(job.id).callback(mod)
    assert "Approved" in (await answered(mod))[-1]
    await world.wait_for(job.id, JobState.DELIVERED)
    usage = await world.bot.guild_admin.usage(guild, world.alice.id)
    # The video was made today, so today's pool paid for it.
    assert usage.server_used == 1


@pytest.mark.settings(
    quota=QuotaConfig(member_credits=1, member_concurrent_jobs=2, server_concurrent_jobs=1)
)
async def test_an_approval_waits_for_the_servers_job_cap(world: World) -> None:
    await open_the_queue(world)
    world.rc.plan_next_job(queue_seconds=4.0)
    await world.animate(world.alice, prompt="first")
    jobs = await world.store.recent_jobs(world.channel.guild_id, world.alice.id)
    running = await world.wait_for(jobs[0].id, JobState.QUEUED)
    await world.animate(world.alice, prompt="second")
    pending = next(
        j
        for j in await world.store.recent_jobs(world.channel.guild_id, world.alice.id)
        if j.id != running.id
    )
    assert pending.state is JobState.PENDING_APPROVAL

    mod = world.interaction(world.mod)
    await ApproveButton(pending.id).callback(mod)
    text = (await answered(mod))[-1]
    assert "1 video" in text and "waiting" in text
    assert (await world.store.get_job(pending.id)).state is JobState.PENDING_APPROVAL  # type: ignore[union-attr]
    assert len(world.rc.submitted) == 1

    await world.wait_for(running.id, JobState.DELIVERED)
    again = world.interaction(world.mod)
    await ApproveButton(pending.id).callback(again)
    assert "Approved" in (await answered(again))[-1]
    await world.wait_for(pending.id, JobState.DELIVERED)


@pytest.mark.settings(quota=QuotaConfig(member_credits=0))
async def test_a_denied_request_leaves_no_notifier_behind(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[weakref.ref[Any]] = []
    # The module the loaded cog runs (loading an extension may import it anew).
    launcher_module = sys.modules["cogs.animate.launcher"]
    original = launcher_module.ChannelNotifier

    class Recorded(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(weakref.ref(self))

    monkeypatch.setattr(launcher_module, "ChannelNotifier", Recorded)
    await open_the_queue(world)
    await world.animate(world.alice)
    [job] = await world.store.recent_jobs(world.channel.guild_id, world.alice.id)
    assert made and made[0]() is not None

    click = world.interaction(world.mod)
    await DenyButton(job.id).callback(click)
    mod = world.interaction(world.mod)
    await submit_modal(opened_modal(click), mod, {})
    assert "Denied" in member_saw(mod)[-1]
    await world.wait_for(job.id, JobState.CANCELLED)

    async def forgotten() -> bool:
        gc.collect()
        return all(ref() is None for ref in made)

    await eventually(forgotten, within=3.0)
