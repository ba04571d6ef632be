"""Persistent buttons: their custom ids carry the job id, so they work after a restart."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, cast

import discord

from bot.jobs import CancelResult
from bot.tree import reply_ephemeral

if TYPE_CHECKING:
    from bot.app import SeedanceBot

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


class CancelButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"job:cancel:(?P<job_id>[0-9]+)",
):
    """Cancel a queued job; the requester or a moderator only."""

    def __init__(self, job_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Cancel",
                style=discord.ButtonStyle.danger,
                custom_id=f"job:cancel:{job_id}",
                emoji="✖️",
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
    ) -> CancelButton:
        return cls(int(match["job_id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = cast("SeedanceBot", interaction.client)
        await interaction.response.defer(ephemeral=True, thinking=True)
        result = await bot.jobs.cancel(
            self.job_id,
            actor_id=interaction.user.id,
            is_moderator=interaction.permissions.manage_guild,
        )
        await reply_ephemeral(interaction, CANCEL_TEXT[result])


def cancel_view(job_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id))
    return view
