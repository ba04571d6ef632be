"""Approve / Deny on an over-cap request in the mod-log; moderators only, this server only."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

import discord

from bot.errors import JobNotFound, UserFacingError
from cogs._render import requester_only
from cogs._tree import reply_ephemeral
from cogs.animate.buttons import JobButton

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)


async def decide(interaction: discord.Interaction[Any], job_id: int, *, approve: bool) -> str:
    """A moderator's Approve / Deny on an over-cap request; returns what they are told."""
    bot = cast("SeedanceBot", interaction.client)
    assert interaction.guild_id is not None
    if bot.notifier_for is None:
        return "Videos are not available right now."
    moderator = interaction.user.id
    try:
        if approve:
            request = await bot.guild_admin.approve(interaction.guild_id, job_id, by=moderator)
        else:
            request = await bot.guild_admin.deny(
                interaction.guild_id,
                job_id,
                by=moderator,
                reason="A moderator declined this request.",
            )
    except JobNotFound:
        return "This request no longer exists."
    if not request.changed:
        return "This request was already decided, or withdrawn."
    verdict = "Approved" if approve else "Denied"
    if interaction.message is not None:
        try:
            await interaction.message.edit(
                content=f"{verdict} by <@{moderator}>.",
                view=None,
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as exc:
            log.info("job %d: could not mark the approval message: %s", job_id, exc)
    job = request.job
    notifier = bot.notifier_for(job)
    if approve:
        await bot.runner.start(job, notifier)
        return "Approved: the video is being made on the server's pool."
    await notifier.job_changed(job)
    try:
        await bot.get_partial_messageable(job.channel_id).send(
            f"<@{job.member_id}> a moderator declined your video request. Nothing was charged.",
            allowed_mentions=requester_only(job.member_id),
        )
    except discord.HTTPException as exc:
        log.info("job %d: could not tell the member about the denial: %s", job_id, exc)
    return "Denied: the member was told and nothing was charged."


class _Decision(JobButton, template=r"$^"):
    """Approve or deny an over-cap request from the mod-log; moderators only."""

    prefix = "approval"
    approve = True

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        if not interaction.permissions.manage_guild or interaction.guild_id is None:
            await reply_ephemeral(interaction, "Only moderators (Manage Server) can decide this.")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            text = await decide(interaction, self.job_id, approve=self.approve)
        except UserFacingError as exc:
            text = exc.message
        await reply_ephemeral(interaction, text)


class ApproveButton(_Decision, template=r"approval:approve:(?P<job_id>[0-9]+)"):
    action, label, style, approve = "approve", "Approve", discord.ButtonStyle.success, True


class DenyButton(_Decision, template=r"approval:deny:(?P<job_id>[0-9]+)"):
    action, label, style, approve = "deny", "Deny", discord.ButtonStyle.danger, False


def approval_view(job_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(ApproveButton(job_id))
    view.add_item(DenyButton(job_id))
    return view
