"""`/jobs`: the caller's recent videos, with their state, settings, credits and result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.i18n import C_, ENGLISH, N_, Words
from bot.models import JobRecord, JobState
from cogs._i18n import private_words
from cogs._render import STATES, clip, credits, message_link, shown_line, ts

if TYPE_CHECKING:
    from bot.app import SeedanceBot


def job_line(job: JobRecord, t: Words = ENGLISH) -> str:
    charged = credits(job.credits, t) if job.state is JobState.DELIVERED else t("no charge")
    if not job.state.is_terminal:
        charged = t("{credits} held", credits=credits(job.credits, t))
    where = ""
    if job.result_message_id:
        link = message_link(job.guild_id, job.channel_id, job.result_message_id)
        where = t(" · [video]({link})", link=link)
    elif job.status_message_id:
        link = message_link(job.guild_id, job.channel_id, job.status_message_id)
        where = t(" · [status]({link})", link=link)
    return (
        f"**{STATES[job.state].label_in(t)}** {ts(job.created_at)} · {job.resolution} "
        f"{job.duration} s · {charged}{where}\n> {shown_line(job.prompt, 120)}"
    )


class HistoryCog(commands.Cog):
    """A member's own job history in this server."""

    def __init__(self, bot: SeedanceBot) -> None:
        self.bot = bot

    @app_commands.command(
        name=C_("command", "jobs"), description=N_("Your recent videos in this server.")
    )
    @app_commands.guild_only()
    async def jobs(self, interaction: discord.Interaction[Any]) -> None:
        assert interaction.guild_id is not None
        recent = await self.bot.runner.recent(interaction.guild_id, interaction.user.id)
        t = private_words(interaction)
        embed = discord.Embed(title=t("Your recent videos"), colour=discord.Colour.blurple())
        if recent:
            embed.description = clip("\n".join(job_line(j, t) for j in recent), 4096)
        else:
            embed.description = t("No videos yet. Try `/animate` with an image and a prompt.")
        await interaction.response.send_message(
            embed=embed, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )


async def setup(bot: SeedanceBot) -> None:
    await bot.add_cog(HistoryCog(bot))
