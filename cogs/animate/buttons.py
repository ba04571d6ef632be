"""The buttons on a job's messages: Cancel on the status, Retry and Delete on the video.

Their custom ids carry the job id, so they work after a restart. Retry is heard by the
/animate cog as the `job_retry` event, so no button ever looks a cog up.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Self, cast

import discord

from bot.jobs.notify import CancelResult
from cogs._tree import reply_ephemeral

if TYPE_CHECKING:
    from bot.app import SeedanceBot

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


class CancelButton(JobButton, template=r"job:cancel:(?P<job_id>[0-9]+)"):
    """Cancel a job not yet running; the requester or a moderator only."""

    action, label, style, emoji = "cancel", "Cancel", discord.ButtonStyle.danger, "✖️"

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = cast("SeedanceBot", interaction.client)
        await interaction.response.defer(ephemeral=True, thinking=True)
        result = await bot.runner.cancel(
            self.job_id,
            actor_id=interaction.user.id,
            is_moderator=interaction.permissions.manage_guild,
        )
        await reply_ephemeral(interaction, CANCEL_TEXT[result])


class RetryButton(JobButton, template=r"job:retry:(?P<job_id>[0-9]+)"):
    """Run a delivered job again with the same inputs (a new job, charged anew)."""

    action, label, emoji = "retry", "Retry", "🔁"

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        # Acknowledge at once; the /animate cog hears `on_job_retry` and answers privately.
        await interaction.response.defer(ephemeral=True, thinking=True)
        interaction.client.dispatch("job_retry", interaction, self.job_id)


class DeleteButton(JobButton, template=r"job:delete:(?P<job_id>[0-9]+)"):
    """Remove a delivered video from the channel; the requester or a moderator only."""

    action, label, emoji = "delete", "Delete", "🗑️"

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = cast("SeedanceBot", interaction.client)
        job = await bot.runner.job(self.job_id)
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


def delivered_view(job_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(RetryButton(job_id))
    view.add_item(DeleteButton(job_id))
    return view


def cancel_view(job_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id))
    return view
