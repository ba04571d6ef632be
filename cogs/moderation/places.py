"""`/admin channels` and `/admin modlog`: where the bot may work, and where moderators hear of it.

A mixin of :class:`~cogs.moderation.admin.AdminCog`: the same cog, in its own file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.models import GuildSettings
from bot.runcomfy.pricing import usd_per_credit
from cogs._tree import reply_ephemeral
from cogs.moderation.common import AllowableChannel, Interaction
from cogs.moderation.embeds import channels_embed, overview_embed

if TYPE_CHECKING:
    from bot.app import SeedanceBot


class PlacesCommands(commands.Cog):
    """The channel subgroups of /admin, and the reads every /admin command shares."""

    bot: SeedanceBot

    channels = app_commands.Group(
        name="channels", description="Where /animate may be used (no list: everywhere)."
    )
    modlog = app_commands.Group(
        name="modlog", description="The channel for job entries and approval requests."
    )

    @staticmethod
    def _ids(interaction: Interaction) -> tuple[int, int]:
        assert interaction.guild_id is not None  # guild-only, and interaction_check ran
        return interaction.guild_id, interaction.user.id

    async def _settings(self, guild_id: int) -> GuildSettings:
        return await self.bot.guild_admin.settings(guild_id)

    async def _overview(self, guild_id: int) -> discord.Embed:
        guilds = self.bot.guild_admin
        settings = await guilds.settings(guild_id)
        pool = await guilds.pool(guild_id)
        banned = len(await guilds.bans(guild_id))
        rules = len(await guilds.block_rules(guild_id))
        price = self.bot.list_price
        estimate = usd_per_credit(price, self.bot.config.quota.cost) if price else None
        return overview_embed(settings, pool, banned=banned, rules=rules, per_credit=estimate)

    # -- channels --------------------------------------------------------------------------------

    @channels.command(name="allow", description="Allow /animate in a channel (and its threads).")
    @app_commands.describe(channel="The channel; once one is listed, only listed ones work")
    async def channels_allow(self, interaction: Interaction, channel: AllowableChannel) -> None:
        guild_id, actor = self._ids(interaction)
        added = await self.bot.guild_admin.allow_channel(guild_id, channel.id, by=actor)
        settings = await self._settings(guild_id)
        head = f"<#{channel.id}> allowed." if added else f"<#{channel.id}> was already allowed."
        if added and len(settings.allowed_channels) == 1:
            head += " From now on `/animate` only works in the listed channels."
        await reply_ephemeral(interaction, head, channels_embed(settings))

    @channels.command(name="disallow", description="Remove a channel from the allowed list.")
    @app_commands.describe(channel="The channel")
    async def channels_disallow(self, interaction: Interaction, channel: AllowableChannel) -> None:
        guild_id, actor = self._ids(interaction)
        removed = await self.bot.guild_admin.disallow_channel(guild_id, channel.id, by=actor)
        settings = await self._settings(guild_id)
        head = (
            f"<#{channel.id}> removed from the list."
            if removed
            else f"<#{channel.id}> was not on the list."
        )
        if removed and not settings.allowed_channels:
            head += " The list is empty, so every channel is allowed again."
        await reply_ephemeral(interaction, head, channels_embed(settings))

    @channels.command(name="clear", description="Empty the list: allow every channel.")
    async def channels_clear(self, interaction: Interaction) -> None:
        guild_id, actor = self._ids(interaction)
        removed = await self.bot.guild_admin.clear_channels(guild_id, by=actor)
        settings = await self._settings(guild_id)
        await reply_ephemeral(
            interaction,
            f"Removed {removed} channel(s): every channel is allowed.",
            channels_embed(settings),
        )

    @channels.command(name="list", description="Where /animate may be used.")
    async def channels_list(self, interaction: Interaction) -> None:
        guild_id, _ = self._ids(interaction)
        settings = await self._settings(guild_id)
        count = len(settings.allowed_channels)
        await reply_ephemeral(
            interaction,
            f"{count} channel(s) listed." if count else "No list: every channel is allowed.",
            channels_embed(settings),
        )

    # -- mod-log ---------------------------------------------------------------------------------

    @modlog.command(name="set", description="Post job entries and approval requests here.")
    @app_commands.describe(channel="A text channel the bot can post in")
    async def modlog_set(self, interaction: Interaction, channel: discord.TextChannel) -> None:
        guild_id, actor = self._ids(interaction)
        await self.bot.guild_admin.set_modlog_channel(guild_id, channel.id, by=actor)
        head = f"Mod-log: <#{channel.id}>."
        me = channel.guild.me
        can = channel.permissions_for(me) if me is not None else None
        if can is not None and not (can.view_channel and can.send_messages and can.embed_links):
            head += (
                "\n⚠️ I cannot post there yet: give me View Channel, Send Messages and "
                "Embed Links in that channel."
            )
        await reply_ephemeral(interaction, head, await self._overview(guild_id))

    @modlog.command(name="clear", description="Stop posting job entries and approval requests.")
    async def modlog_clear(self, interaction: Interaction) -> None:
        guild_id, actor = self._ids(interaction)
        await self.bot.guild_admin.set_modlog_channel(guild_id, None, by=actor)
        settings = await self._settings(guild_id)
        head = "Mod-log cleared: no job entries are posted."
        if settings.approvals:
            head += (
                "\n⚠️ Approvals are on, but requests have nowhere to go: set a channel or "
                "`/admin approvals enabled: False`."
            )
        await reply_ephemeral(interaction, head, await self._overview(guild_id))
