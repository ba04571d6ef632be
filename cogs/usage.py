"""`/usage`: where a member (and the server's pool) stands this period."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import UserFacingError
from bot.i18n import C_, ENGLISH, N_, Words, _
from bot.models import Usage
from cogs._i18n import private_words
from cogs._render import PERIOD_WORD, credits, ts

if TYPE_CHECKING:
    from bot.app import SeedanceBot


def usage_embed(usage: Usage, *, member: discord.abc.User, t: Words = ENGLISH) -> discord.Embed:
    embed = discord.Embed(
        title=t("Video credits — {name}", name=member.display_name),
        colour=discord.Colour.blurple(),
    )
    held = (
        t(" (+{count} held by running jobs)", count=usage.member_reserved)
        if usage.member_reserved
        else ""
    )
    embed.add_field(
        name=t("Used {period}", period=_(PERIOD_WORD[usage.period])),
        value=t(
            "{used}{held} of {limit}",
            used=credits(usage.member_used, t),
            held=held,
            limit=usage.member_limit,
        ),
        inline=True,
    )
    embed.add_field(name=t("Left"), value=credits(usage.member_left, t), inline=True)
    embed.add_field(
        name=t("Resets"),
        value=f"{ts(usage.resets_at)} ({ts(usage.resets_at, 'f')})",
        inline=True,
    )
    server_held = (
        t(" (+{count} held)", count=usage.server_reserved) if usage.server_reserved else ""
    )
    embed.add_field(
        name=t("Server pool"),
        value=t(
            "{used}{held} used of {limit} · {left} left",
            used=credits(usage.server_used, t),
            held=server_held,
            limit=usage.server_limit,
            left=credits(usage.server_left, t),
        ),
        inline=False,
    )
    if usage.member_active_jobs:
        embed.add_field(
            name=t("In progress"),
            value=t("{count} job(s)", count=usage.member_active_jobs),
            inline=True,
        )
    return embed


OPTION_NAMES = (C_("command", "member"),)
"""The option's name as members read it (discord.py takes it from the parameter)."""


class UsageCog(commands.Cog):
    """Credits used and left, for the caller or (for moderators) another member."""

    def __init__(self, bot: SeedanceBot) -> None:
        self.bot = bot

    @app_commands.command(
        name=C_("command", "usage"),
        description=N_("Your video credits: used, left, and when they reset."),
    )
    @app_commands.guild_only()
    @app_commands.describe(member=N_("Moderators only: look at another member"))
    async def usage(
        self, interaction: discord.Interaction[Any], member: discord.Member | None = None
    ) -> None:
        assert interaction.guild_id is not None
        target: discord.abc.User = member or interaction.user
        if target.id != interaction.user.id and not interaction.permissions.manage_guild:
            raise UserFacingError(
                _("Only moderators (Manage Server) can look at another member's usage.")
            )
        roles = [r.id for r in getattr(target, "roles", [])]
        usage = await self.bot.guild_admin.usage(interaction.guild_id, target.id, roles)
        embed = usage_embed(usage, member=target, t=private_words(interaction))
        await interaction.response.send_message(
            embed=embed, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )


async def setup(bot: SeedanceBot) -> None:
    await bot.add_cog(UsageCog(bot))
