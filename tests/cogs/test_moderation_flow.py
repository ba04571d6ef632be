"""Moderation as members meet it: gates, the approval queue, the fair line, the mod-log."""

from __future__ import annotations

import pytest

from bot.config import QuotaConfig
from bot.models import JobState
from cogs.animate.buttons import CancelButton
from cogs.moderation.buttons import ApproveButton, DenyButton
from tests.harness.discord_fakes import Member, eventually, member_saw, opened_modal, submit_modal
from tests.harness.store_calls import add_block_rule
from tests.harness.worlds import World

# Leases, the runner, quotas and approvals: the same flows on both stores.
pytestmark = pytest.mark.store_backends("sqlite", "postgres")


async def test_a_paused_server_refuses_without_a_job(world: World) -> None:
    await world.store.set_paused(world.channel.guild_id, True, by=world.mod.id)
    interaction = await world.animate(world.alice)
    assert "paused" in member_saw(interaction)[0].lower()
    assert world.rc.submitted == [] and world.channel.messages == []


async def test_a_banned_member_is_refused(world: World) -> None:
    await world.store.ban_member(world.channel.guild_id, world.alice.id, by=world.mod.id)
    refused = await world.animate(world.alice)
    assert "not allowed" in member_saw(refused)[0].lower() or "ban" in member_saw(refused)[0]
    allowed = await world.animate(world.bob)
    assert "on its way" in member_saw(allowed)[0]


async def test_only_allowed_channels_take_requests(world: World) -> None:
    await world.store.allow_channel(world.channel.guild_id, world.modlog.id, by=world.mod.id)
    refused = await world.animate(world.alice)
    assert "channel" in member_saw(refused)[0].lower()
    assert world.rc.submitted == []


async def test_a_blocked_prompt_names_the_rule_not_the_words(world: World) -> None:
    await add_block_rule(world.store, world.channel.guild_id, "word", "dragon", by=world.mod.id)
    refused = await world.animate(world.alice, prompt="A DRAGON breathes fire")
    text = member_saw(refused)[0]
    assert "rule 1" in text.lower() or "#1" in text
    assert "dragon" not in text.lower()
    assert world.rc.submitted == []
    assert await world.store.recent_jobs(world.channel.guild_id, world.alice.id) == []


async def enable_approvals(world: World) -> None:
    guild = world.channel.guild_id
    await world.store.set_approvals(guild, True, by=world.mod.id)
    await world.store.set_modlog_channel(guild, world.modlog.id, by=world.mod.id)


@pytest.mark.settings(quota=QuotaConfig(member_credits=1))
async def test_over_cap_goes_to_moderators_and_approval_runs_it_on_the_pool(
    world: World,
) -> None:
    await enable_approvals(world)
    await world.animate(world.alice)
    first = await world.wait_for((await world.only_job()).id, JobState.DELIVERED)

    asked = await world.animate(world.alice, prompt="one more, please")
    assert "went to the moderators" in member_saw(asked)[0]
    jobs = await world.store.recent_jobs(world.channel.guild_id, world.alice.id)
    pending = next(j for j in jobs if j.id != first.id)
    assert pending.state is JobState.PENDING_APPROVAL
    status = world.channel.by_id(pending.status_message_id or 0)
    embed = status.current_embed()
    assert embed is not None and "moderator" in (embed.title or "")
    # The request sits in the mod-log (after the first job's entry) with Approve / Deny.
    request = next(m for m in world.modlog.messages if m.view is not None)
    labels = [getattr(i, "item", i).label for i in request.view.children]  # type: ignore[union-attr]
    assert labels == ["Approve", "Deny"]
    assert world.rc.submitted and len(world.rc.submitted) == 1

    nosy = world.interaction(world.bob)
    await ApproveButton(pending.id).callback(nosy)
    assert "Only moderators" in member_saw(nosy)[0]

    mod = world.interaction(world.mod)
    mod.message = world.modlog.message_object(request.id)
    await ApproveButton(pending.id).callback(mod)
    assert "Approved" in member_saw(mod)[-1]
    done = await world.wait_for(pending.id, JobState.DELIVERED)
    assert done.prompt == "one more, please"
    usage = await world.bot.guild_admin.usage(world.channel.guild_id, world.alice.id)
    assert usage.server_used == 2

    again = world.interaction(world.mod)
    await DenyButton(pending.id).callback(again)
    assert "already decided" in member_saw(again)[-1]


@pytest.mark.settings(quota=QuotaConfig(member_credits=0))
async def test_a_denied_request_tells_the_member_and_charges_nothing(world: World) -> None:
    await enable_approvals(world)
    await world.animate(world.alice)
    [job] = await world.store.recent_jobs(world.channel.guild_id, world.alice.id)
    assert job.state is JobState.PENDING_APPROVAL

    click = world.interaction(world.mod)
    await DenyButton(job.id).callback(click)
    mod = world.interaction(world.mod)
    await submit_modal(opened_modal(click), mod, {})
    assert "Denied" in member_saw(mod)[-1]
    job = await world.wait_for(job.id, JobState.CANCELLED)
    told = world.channel.messages[-1]
    assert told.content is not None and "declined" in told.content
    assert [u.id for u in told.allowed_mentions.users] == [world.alice.id]  # type: ignore[union-attr]
    status = world.channel.by_id(job.status_message_id or 0)
    assert "Cancelled" in (status.current_embed().title or "")  # type: ignore[union-attr]
    usage = await world.bot.guild_admin.usage(world.channel.guild_id, world.alice.id)
    assert (usage.member_used, usage.member_reserved, usage.server_used) == (0, 0, 0)
    assert world.rc.submitted == []


@pytest.mark.settings(quota=QuotaConfig(member_credits=0))
async def test_without_a_modlog_channel_an_over_cap_request_is_refused(world: World) -> None:
    await world.store.set_approvals(world.channel.guild_id, True, by=world.mod.id)
    refused = await world.animate(world.alice)
    assert "no moderator channel" in member_saw(refused)[-1]
    usage = await world.bot.guild_admin.usage(world.channel.guild_id, world.alice.id)
    assert usage.member_reserved == 0 and usage.member_active_jobs == 0


@pytest.mark.settings(max_concurrent_jobs=1)
async def test_beyond_the_provider_cap_jobs_wait_in_a_fair_line(world: World) -> None:
    world.rc.plan_next_job(queue_seconds=3.0, run_seconds=0.1)
    await world.animate(world.alice)
    [first] = await world.store.recent_jobs(world.channel.guild_id, world.alice.id)
    await world.wait_for(first.id, JobState.QUEUED)

    await world.animate(world.bob)
    [waiting] = await world.store.recent_jobs(world.channel.guild_id, world.bob.id)

    async def in_line() -> bool:
        return world.bot.runner.slot_position(waiting.id) == 1

    await eventually(in_line)
    status = world.channel.by_id(waiting.status_message_id or 0)

    async def shows_line() -> bool:
        embed = status.current_embed()
        return embed is not None and "free slot" in (embed.title or "")

    await eventually(shows_line)
    assert len(world.rc.submitted) == 1  # only the first reached the provider

    # The waiting job can be cancelled before it ever reaches the provider.
    click = world.interaction(world.bob)
    await CancelButton(waiting.id).callback(click)
    assert "Cancelled" in member_saw(click)[-1]
    await world.wait_for(waiting.id, JobState.CANCELLED)
    cancelled = status.current_embed()
    assert cancelled is not None and "Cancelled" in (cancelled.title or "")
    assert status.current_view() is None

    carol = Member("carol")
    await world.animate(carol)
    [third] = await world.store.recent_jobs(world.channel.guild_id, carol.id)
    await world.wait_for(first.id, JobState.DELIVERED)
    await world.wait_for(third.id, JobState.DELIVERED)
    assert len(world.rc.submitted) == 2


async def test_every_finished_job_gets_one_modlog_entry(world: World) -> None:
    await world.store.set_modlog_channel(world.channel.guild_id, world.modlog.id, by=world.mod.id)
    await world.animate(world.alice, prompt="entry please")
    job = await world.wait_for((await world.only_job()).id, JobState.DELIVERED)
    [entry] = world.modlog.messages
    assert entry.embed is not None
    assert f"Job {job.id}" in (entry.embed.title or "") and "delivered" in (entry.embed.title or "")
    text = entry.embed.description or ""
    assert f"<@{world.alice.id}>" in text and "entry please" in text
    fields = {f.name: f.value for f in entry.embed.fields}
    assert fields["Credits"] == "1 credit" and fields["Settings"].startswith("480p")
    assert entry.embed.thumbnail.url
    assert entry.allowed_mentions is not None and not entry.allowed_mentions.users
