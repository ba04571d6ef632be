"""Hostile input on the Discord face: prompts shown as text, buttons bound to their server and
message, the requester's credits kept private, and cheap refusals before any download."""

from __future__ import annotations

import re
from typing import Any
from unittest.mock import create_autospec

import discord
import pytest

from bot.config import QuotaConfig
from bot.models import JobState
from cogs.animate.buttons import CancelButton, DeleteButton, RetryButton
from cogs.moderation.desk import job_entry
from tests.harness.discord_fakes import (
    FakeChannel,
    Member,
    answered,
    invoke,
    make_interaction,
    member_saw,
    snowflake,
)
from tests.harness.worlds import World
from tests.unit.test_shown_text import HOSTILE, live_markdown

# -- 1. prompts shown as text ------------------------------------------------------------------


async def test_a_hostile_prompt_is_text_on_the_status_the_modlog_and_jobs(world: World) -> None:
    await world.animate(world.alice, prompt=HOSTILE)
    job = await world.wait_for((await world.only_job()).id, JobState.DELIVERED)

    status = world.channel.by_id(job.status_message_id or 0).current_embed()
    assert status is not None and "free nitro" in (status.description or "")
    assert live_markdown(status.description or "") == []

    # The mod-log entry of the settled job (what the desk posts once the runner settles it).
    entry = job_entry(job)
    prompt_part = (entry.description or "").split("\n", 1)[1]
    assert "free nitro" in prompt_part and live_markdown(prompt_part) == []

    interaction = world.interaction(world.alice)
    await invoke(world.bot.tree, interaction, "jobs")
    listed = interaction.response.send_message.await_args.kwargs["embed"]  # type: ignore[attr-defined]
    quoted = [line for line in (listed.description or "").splitlines() if line.startswith("> ")]
    assert quoted and all(live_markdown(line) == [] for line in quoted)
    # Only the bot's own "[video](…)" link is live in /jobs, never the member's.
    assert len(re.findall(r"(?<!\\)\]\(", listed.description or "")) == 1


@pytest.mark.settings(quota=QuotaConfig(member_credits=0))
async def test_a_hostile_prompt_is_text_in_the_approval_request(world: World) -> None:
    guild = world.channel.guild_id
    await world.store.set_approvals(guild, True, by=world.mod.id)
    await world.store.set_modlog_channel(guild, world.modlog.id, by=world.mod.id)
    await world.animate(world.alice, prompt=HOSTILE)
    [request] = world.modlog.messages
    assert request.embed is not None
    prompt_part = (request.embed.description or "").split("\n", 1)[1]
    assert "free nitro" in prompt_part and live_markdown(prompt_part) == []


# -- 2. buttons bound to their server and message --------------------------------------------


def from_custom_id(kind: Any, custom_id: str, interaction: discord.Interaction[Any]) -> Any:
    """The button discord.py builds when a click carries ``custom_id``."""
    match = re.fullmatch(kind.__discord_ui_compiled_template__, custom_id)
    assert match is not None
    item = create_autospec(discord.ui.Button, instance=True)
    return kind.from_custom_id(interaction, item, match)


@pytest.mark.parametrize("kind", [CancelButton, RetryButton, DeleteButton])
async def test_an_oversized_job_id_gets_a_clear_private_answer(world: World, kind: Any) -> None:
    interaction = world.interaction(world.alice)
    button = await from_custom_id(kind, f"job:{kind.action}:{'9' * 30}", interaction)
    await button.callback(interaction)
    [text] = await answered(interaction)
    assert "no longer" in text


@pytest.mark.parametrize("kind", [CancelButton, RetryButton, DeleteButton])
async def test_a_forgotten_job_gets_a_clear_private_answer(world: World, kind: Any) -> None:
    interaction = world.interaction(world.alice)
    button = await from_custom_id(kind, f"job:{kind.action}:987654321", interaction)
    await button.callback(interaction)
    [text] = await answered(interaction)
    assert "no longer" in text


async def test_a_moderator_of_another_server_cannot_cancel_a_job_here(world: World) -> None:
    world.rc.plan_next_job(queue_seconds=5.0)
    await world.animate(world.alice)
    job = await world.wait_for((await world.only_job()).id, JobState.QUEUED)

    elsewhere = FakeChannel(snowflake(), snowflake())
    intruder = make_interaction(world.bot, Member("other-mod", moderator=True), elsewhere)
    await CancelButton(job.id).callback(intruder)
    assert "no longer" in (await answered(intruder))[-1]
    assert (await world.store.get_job(job.id)).state is JobState.QUEUED  # type: ignore[union-attr]


async def test_cancel_on_another_message_does_not_cancel_the_job(world: World) -> None:
    world.rc.plan_next_job(queue_seconds=5.0)
    await world.animate(world.alice)
    job = await world.wait_for((await world.only_job()).id, JobState.QUEUED)
    other = await world.channel.partial().send("some other message")

    click = world.interaction(world.alice)
    click.message = world.channel.message_object(other.id)
    await CancelButton(job.id).callback(click)
    assert "no longer" in (await answered(click))[-1]
    assert (await world.store.get_job(job.id)).state is JobState.QUEUED  # type: ignore[union-attr]


async def test_delete_pasted_on_another_message_deletes_nothing(world: World) -> None:
    await world.animate(world.alice)
    job = await world.wait_for((await world.only_job()).id, JobState.DELIVERED)
    click = world.interaction(world.alice)
    # A Delete button of this job carried by its status message (say, pasted by another tool).
    click.message = world.channel.message_object(job.status_message_id or 0)
    await DeleteButton(job.id).callback(click)
    assert "no longer" in (await answered(click))[-1]
    assert not world.channel.by_id(job.status_message_id or 0).deleted


async def test_delete_on_the_video_still_works(world: World) -> None:
    await world.animate(world.alice)
    job = await world.wait_for((await world.only_job()).id, JobState.DELIVERED)
    click = world.interaction(world.alice)
    click.message = world.channel.message_object(job.result_message_id or 0)
    await DeleteButton(job.id).callback(click)
    assert "Deleted" in (await answered(click))[-1]
    assert world.channel.by_id(job.result_message_id or 0).deleted


# -- 4. the requester's credits stay private ---------------------------------------------------


@pytest.mark.settings(quota=QuotaConfig(member_credits=10))
async def test_the_public_status_hides_credits_left_and_the_ack_shows_them(world: World) -> None:
    world.rc.plan_next_job(queue_seconds=3.0)
    ack = await world.animate(world.alice)
    assert "on its way" in member_saw(ack)[0]
    assert "9 of 10 credits left today" in member_saw(ack)[0]

    job = await world.wait_for((await world.only_job()).id, JobState.QUEUED)
    status = world.channel.by_id(job.status_message_id or 0)
    for embed in [status.embed, *(e["embed"] for e in status.edits if "embed" in e)]:
        assert embed is not None
        shown = " ".join([embed.description or "", *(f"{f.name} {f.value}" for f in embed.fields)])
        assert "left" not in shown and "quota" not in shown.lower()
        assert "1 credit" in shown  # the cost stays


# -- 5. cheap checks before any download -------------------------------------------------------


def downloads(attachment: discord.Attachment) -> int:
    return attachment.read.await_count  # type: ignore[attr-defined]


@pytest.mark.settings(quota=QuotaConfig(member_credits=0))
async def test_a_member_without_credits_costs_no_download(world: World) -> None:
    image, last = world.image(), world.image()
    refused = await world.animate(world.alice, image=image, last_frame=last)
    assert "Not enough credits" in member_saw(refused)[0]
    assert downloads(image) == downloads(last) == 0
    assert world.channel.messages == []


async def test_a_member_at_their_job_cap_costs_no_download(world: World) -> None:
    world.rc.plan_next_job(queue_seconds=5.0)
    await world.animate(world.alice)
    await world.wait_for((await world.only_job()).id, JobState.QUEUED)
    image = world.image()
    refused = await world.animate(world.alice, image=image)
    assert "in progress" in member_saw(refused)[0]
    assert downloads(image) == 0


@pytest.mark.settings(quota=QuotaConfig(member_concurrent_jobs=3), cooldown_seconds=30.0)
async def test_a_member_who_repeats_at_once_is_asked_to_wait_and_charged_nothing(
    world: World,
) -> None:
    first = await world.animate(world.alice)
    assert "on its way" in member_saw(first)[0]
    image = world.image()
    again = await world.animate(world.alice, image=image)
    text = member_saw(again)[0]
    assert "try again" in text.lower() and "<t:" in text
    assert downloads(image) == 0
    assert len(await world.store.recent_jobs(world.channel.guild_id, world.alice.id)) == 1
    usage = await world.bot.guild_admin.usage(world.channel.guild_id, world.alice.id)
    assert usage.member_reserved + usage.member_used == 1
    # Somebody else is not held up by Alice's cooldown.
    other = await world.animate(world.bob)
    assert "on its way" in member_saw(other)[0]
