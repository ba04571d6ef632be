"""Persistent buttons: their custom ids carry the job id, so they work after a restart."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Self, cast

import discord

from bot.errors import UserFacingError
from bot.jobs.runner import CancelResult
from cogs._tree import reply_ephemeral

if TYPE_CHECKING:
    from bot.app import SeedanceBot
    from cogs.animate import AnimateCog

log = logging.getLogger(__name__)

CANCEL_TEXT = {
    CancelResult.CANCELLED: "Cancelled. The credits were released.",
    CancelResult.NOT_ALLOWED: (
        "Only the member who asked for this video, or a moderator, can cancel it."
    ),
    CancelResult.NOT_CANCELLABLE: (
        "This job can no longer be cancelled: the video service has already started on it."
    ),
    CancelResult.FINISHED: "This job has already finished.",
    CancelResult.UNKNOWN: "This job no longer exists.",
}


class JobButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=r"$^"):
    """A button whose custom id is `<prefix>:<action>:<job id>`; subclasses set the look."""

    prefix = "job"
    action = ""
    label = ""
    style = discord.ButtonStyle.secondary
    emoji: str | None = None

    def __init__(self, job_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label=self.label,
                style=self.style,
                custom_id=f"{self.prefix}:{self.action}:{job_id}",
                emoji=self.emoji,
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        return cls(int(match["job_id"]))


def _animate_cog(interaction: discord.Interaction[Any]) -> AnimateCog | None:
    bot = cast("SeedanceBot", interaction.client)
    return cast("AnimateCog | None", bot.get_cog("AnimateCog"))


class CancelButton(JobButton, template=r"job:cancel:(?P<job_id>[0-9]+)"):
    """Cancel a job not yet running; the requester or a moderator only."""

    action, label, style, emoji = "cancel", "Cancel", discord.ButtonStyle.danger, "✖️"

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = cast("SeedanceBot", interaction.client)
        await interaction.response.defer(ephemeral=True, thinking=True)
        result = await bot.jobs.cancel(
            self.job_id,
            actor_id=interaction.user.id,
            is_moderator=interaction.permissions.manage_guild,
        )
        await reply_ephemeral(interaction, CANCEL_TEXT[result])


class RetryButton(JobButton, template=r"job:retry:(?P<job_id>[0-9]+)"):
    """Run a delivered job again with the same inputs (a new job, charged anew)."""

    action, label, emoji = "retry", "Retry", "🔁"

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        cog = _animate_cog(interaction)
        if cog is None:
            await reply_ephemeral(interaction, "Videos are not available right now.")
            return
        try:
            await cog.retry(interaction, self.job_id)
        except UserFacingError as exc:
            await reply_ephemeral(interaction, exc.message)


class DeleteButton(JobButton, template=r"job:delete:(?P<job_id>[0-9]+)"):
    """Remove a delivered video from the channel; the requester or a moderator only."""

    action, label, emoji = "delete", "Delete", "🗑️"

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = cast("SeedanceBot", interaction.client)
        job = await bot.jobs.get_job(self.job_id)
        owner = job.member_id if job else None
        if interaction.user.id != owner and not interaction.permissions.manage_guild:
            await reply_ephemeral(
                interaction,
                "Only the member who asked for this video, or a moderator, can delete it.",
            )
            return
        if interaction.message is None:
            await reply_ephemeral(interaction, "That message is already gone.")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            await interaction.message.delete()
        except discord.NotFound:
            log.info("job %d: the video message was already deleted", self.job_id)
        except discord.HTTPException:
            await reply_ephemeral(interaction, "I could not delete that message.")
            return
        await reply_ephemeral(interaction, "Deleted.")


class _Decision(JobButton, template=r"$^"):
    """Approve or deny an over-cap request from the mod-log; moderators only."""

    prefix = "approval"
    approve = True

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        if not interaction.permissions.manage_guild or interaction.guild_id is None:
            await reply_ephemeral(interaction, "Only moderators (Manage Server) can decide this.")
            return
        cog = _animate_cog(interaction)
        if cog is None:
            await reply_ephemeral(interaction, "Videos are not available right now.")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            text = await cog.decide(interaction, self.job_id, approve=self.approve)
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


def delivered_view(job_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(RetryButton(job_id))
    view.add_item(DeleteButton(job_id))
    return view


def cancel_view(job_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id))
    return view
