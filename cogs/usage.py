"""`/usage`: where a member (and the server's pool) stands this period."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import UserFacingError
from bot.models import Usage
from cogs._render import PERIOD_WORD, credits, ts

if TYPE_CHECKING:
    from bot.app import SeedanceBot


def usage_embed(usage: Usage, *, member: discord.abc.User) -> discord.Embed:
    word = PERIOD_WORD[usage.period]
    embed = discord.Embed(
        title=f"Video credits — {member.display_name}", colour=discord.Colour.blurple()
    )
    held = f" (+{usage.member_reserved} held by running jobs)" if usage.member_reserved else ""
    embed.add_field(
        name=f"Used {word}",
        value=f"{credits(usage.member_used)}{held} of {usage.member_limit}",
        inline=True,
    )
    embed.add_field(name="Left", value=credits(usage.member_left), inline=True)
    embed.add_field(
        name="Resets", value=f"{ts(usage.resets_at)} ({ts(usage.resets_at, 'f')})", inline=True
    )
    server_held = f" (+{usage.server_reserved} held)" if usage.server_reserved else ""
    embed.add_field(
        name="Server pool",
        value=(
            f"{credits(usage.server_used)}{server_held} used of {usage.server_limit} · "
            f"{credits(usage.server_left)} left"
        ),
        inline=False,
    )
    if usage.member_active_jobs:
        embed.add_field(name="In progress", value=f"{usage.member_active_jobs} job(s)", inline=True)
    return embed


class UsageCog(commands.Cog):
    """Credits used and left, for the caller or (for moderators) another member."""

    def __init__(self, bot: SeedanceBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="usage", description="Your video credits: used, left, and when they reset."
    )
    @app_commands.guild_only()
    @app_commands.describe(member="Moderators only: look at another member")
    async def usage(
        self, interaction: discord.Interaction[Any], member: discord.Member | None = None
    ) -> None:
        assert interaction.guild_id is not None
        target: discord.abc.User = member or interaction.user
        if target.id != interaction.user.id and not interaction.permissions.manage_guild:
            raise UserFacingError(
                "Only moderators (Manage Server) can look at another member's usage."
            )
        roles = [r.id for r in getattr(target, "roles", [])]
        usage = await self.bot.guild_admin.usage(interaction.guild_id, target.id, roles)
        embed = usage_embed(usage, member=target)
        await interaction.response.send_message(
            embed=embed, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )


async def setup(bot: SeedanceBot) -> None:
    await bot.add_cog(UsageCog(bot))
