"""`/admin channels` and `/admin modlog`: where the bot may work, and where moderators hear of it.

A mixin of :class:`~cogs.moderation.admin.AdminCog`: the same cog, in its own file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.i18n import C_, ENGLISH, N_, Words
from bot.models import GuildSettings
from bot.runcomfy.pricing import usd_per_credit
from cogs._i18n import private_words
from cogs._tree import reply_ephemeral
from cogs.moderation.common import AllowableChannel, Interaction
from cogs.moderation.embeds import channels_embed, overview_embed

if TYPE_CHECKING:
    from bot.app import SeedanceBot


class PlacesCommands(commands.Cog):
    """The channel subgroups of /admin, and the reads every /admin command shares."""

    bot: SeedanceBot

    channels = app_commands.Group(
        name=C_("command", "channels"),
        description=N_("Where /animate may be used (no list: everywhere)."),
    )
    modlog = app_commands.Group(
        name=C_("command", "modlog"),
        description=N_("The channel for job entries and approval requests."),
    )

    @staticmethod
    def _ids(interaction: Interaction) -> tuple[int, int]:
        assert interaction.guild_id is not None  # guild-only, and interaction_check ran
        return interaction.guild_id, interaction.user.id

    async def _settings(self, guild_id: int) -> GuildSettings:
        return await self.bot.guild_admin.settings(guild_id)

    async def _overview(self, guild_id: int, t: Words = ENGLISH) -> discord.Embed:
        guilds = self.bot.guild_admin
        settings = await guilds.settings(guild_id)
        pool = await guilds.pool(guild_id)
        banned = len(await guilds.bans(guild_id))
        rules = len(await guilds.block_rules(guild_id))
        price = self.bot.list_price
        estimate = usd_per_credit(price, self.bot.config.quota.cost) if price else None
        return overview_embed(settings, pool, banned=banned, rules=rules, per_credit=estimate, t=t)

    # -- channels --------------------------------------------------------------------------------

    @channels.command(
        name=C_("command", "allow"),
        description=N_("Allow /animate in a channel (and its threads)."),
    )
    @app_commands.describe(channel=N_("The channel; once one is listed, only listed ones work"))
    async def channels_allow(self, interaction: Interaction, channel: AllowableChannel) -> None:
        guild_id, actor = self._ids(interaction)
        added = await self.bot.guild_admin.allow_channel(guild_id, channel.id, by=actor)
        settings = await self._settings(guild_id)
        t = private_words(interaction)
        where = f"<#{channel.id}>"
        head = (
            t("{channel} allowed.", channel=where)
            if added
            else t("{channel} was already allowed.", channel=where)
        )
        if added and len(settings.allowed_channels) == 1:
            head += " " + t("From now on `/animate` only works in the listed channels.")
        await reply_ephemeral(interaction, head, channels_embed(settings, t))

    @channels.command(
        name=C_("command", "disallow"), description=N_("Remove a channel from the allowed list.")
    )
    @app_commands.describe(channel=N_("The channel"))
    async def channels_disallow(self, interaction: Interaction, channel: AllowableChannel) -> None:
        guild_id, actor = self._ids(interaction)
        removed = await self.bot.guild_admin.disallow_channel(guild_id, channel.id, by=actor)
        settings = await self._settings(guild_id)
        t = private_words(interaction)
        where = f"<#{channel.id}>"
        head = (
            t("{channel} removed from the list.", channel=where)
            if removed
            else t("{channel} was not on the list.", channel=where)
        )
        if removed and not settings.allowed_channels:
            head += " " + t("The list is empty, so every channel is allowed again.")
        await reply_ephemeral(interaction, head, channels_embed(settings, t))

    @channels.command(
        name=C_("command", "clear"), description=N_("Empty the list: allow every channel.")
    )
    async def channels_clear(self, interaction: Interaction) -> None:
        guild_id, actor = self._ids(interaction)
        removed = await self.bot.guild_admin.clear_channels(guild_id, by=actor)
        settings = await self._settings(guild_id)
        t = private_words(interaction)
        await reply_ephemeral(
            interaction,
            t("Removed {count} channel(s): every channel is allowed.", count=removed),
            channels_embed(settings, t),
        )

    @channels.command(name=C_("command", "list"), description=N_("Where /animate may be used."))
    async def channels_list(self, interaction: Interaction) -> None:
        guild_id, _actor = self._ids(interaction)
        settings = await self._settings(guild_id)
        count = len(settings.allowed_channels)
        t = private_words(interaction)
        await reply_ephemeral(
            interaction,
            t("{count} channel(s) listed.", count=count)
            if count
            else t("No list: every channel is allowed."),
            channels_embed(settings, t),
        )

    # -- mod-log ---------------------------------------------------------------------------------

    @modlog.command(
        name=C_("command", "set"), description=N_("Post job entries and approval requests here.")
    )
    @app_commands.describe(channel=N_("A text channel the bot can post in"))
    async def modlog_set(self, interaction: Interaction, channel: discord.TextChannel) -> None:
        guild_id, actor = self._ids(interaction)
        await self.bot.guild_admin.set_modlog_channel(guild_id, channel.id, by=actor)
        t = private_words(interaction)
        head = t("Mod-log: {channel}.", channel=f"<#{channel.id}>")
        me = channel.guild.me
        can = channel.permissions_for(me) if me is not None else None
        if can is not None and not (can.view_channel and can.send_messages and can.embed_links):
            head += "\n⚠️ " + t(
                "I cannot post there yet: give me View Channel, Send Messages and "
                "Embed Links in that channel."
            )
        await reply_ephemeral(interaction, head, await self._overview(guild_id, t))

    @modlog.command(
        name=C_("command", "clear"),
        description=N_("Stop posting job entries and approval requests."),
    )
    async def modlog_clear(self, interaction: Interaction) -> None:
        guild_id, actor = self._ids(interaction)
        await self.bot.guild_admin.set_modlog_channel(guild_id, None, by=actor)
        settings = await self._settings(guild_id)
        t = private_words(interaction)
        head = t("Mod-log cleared: no job entries are posted.")
        if settings.approvals:
            head += "\n⚠️ " + t(
                "Approvals are on, but requests have nowhere to go: set a channel or "
                "`/admin approvals enabled: False`."
            )
        await reply_ephemeral(interaction, head, await self._overview(guild_id, t))
