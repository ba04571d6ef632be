"""`/admin ban`, `unban`, `bans`, `forget` and `audit`: who may use the bot, and what
moderators did.

A mixin of :class:`~cogs.moderation.admin.AdminCog`: the same cog, in its own file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import MemberBusy, UserFacingError
from bot.i18n import C_, N_, _
from cogs._i18n import private_words
from cogs._tree import reply_ephemeral
from cogs.moderation.common import Interaction, check_range
from cogs.moderation.embeds import audit_line, bans_embed, pages, user_mention

if TYPE_CHECKING:
    from bot.app import SeedanceBot


class MemberCommands(commands.Cog):
    """Bans, forgetting a member, and the audit trail."""

    bot: SeedanceBot

    @staticmethod
    def _ids(interaction: Interaction) -> tuple[int, int]:
        assert interaction.guild_id is not None  # guild-only, and interaction_check ran
        return interaction.guild_id, interaction.user.id

    # -- members --------------------------------------------------------------------------------

    @app_commands.command(
        name=C_("command", "ban"), description=N_("Stop a member from using the bot here.")
    )
    @app_commands.describe(member=N_("Who"), reason=N_("Why (kept in the audit trail)"))
    async def ban(
        self,
        interaction: Interaction,
        member: discord.User,
        reason: app_commands.Range[str, 1, 200] | None = None,
    ) -> None:
        guild_id, actor = self._ids(interaction)
        banned = await self.bot.guild_admin.ban(guild_id, member.id, by=actor, reason=reason)
        count = len(await self.bot.guild_admin.bans(guild_id))
        who = user_mention(member.id)
        t = private_words(interaction)
        head = (
            t("{member} can no longer use the bot here.", member=who)
            if banned
            else t("{member} was already banned from the bot.", member=who)
        )
        await reply_ephemeral(interaction, f"{head} " + t("Banned members: {count}.", count=count))

    @app_commands.command(
        name=C_("command", "unban"), description=N_("Let a banned member use the bot again.")
    )
    @app_commands.describe(member=N_("Who"))
    async def unban(self, interaction: Interaction, member: discord.User) -> None:
        guild_id, actor = self._ids(interaction)
        unbanned = await self.bot.guild_admin.unban(guild_id, member.id, by=actor)
        count = len(await self.bot.guild_admin.bans(guild_id))
        who = user_mention(member.id)
        t = private_words(interaction)
        head = (
            t("{member} can use the bot again.", member=who)
            if unbanned
            else t("{member} was not banned.", member=who)
        )
        await reply_ephemeral(interaction, f"{head} " + t("Banned members: {count}.", count=count))

    @app_commands.command(
        name=C_("command", "bans"), description=N_("Members banned from the bot here.")
    )
    async def bans(self, interaction: Interaction) -> None:
        guild_id, _actor = self._ids(interaction)
        found = await self.bot.guild_admin.bans(guild_id)
        t = private_words(interaction)
        await reply_ephemeral(
            interaction, t("Banned members: {count}.", count=len(found)), bans_embed(found, t)
        )

    @app_commands.command(
        name=C_("command", "forget"),
        description=N_("Delete one member's prompts and jobs from the bot's records."),
    )
    @app_commands.describe(
        member=N_("Whose records to delete"),
        confirm=N_("True to delete; this cannot be undone"),
    )
    async def forget(self, interaction: Interaction, member: discord.User, confirm: bool) -> None:
        guild_id, actor = self._ids(interaction)
        who = user_mention(member.id)
        if not confirm:
            raise UserFacingError(
                _(
                    "Nothing was deleted. To delete {member}'s prompts and jobs for good, run "
                    "the command again with `confirm: True`.",
                    member=who,
                )
            )
        try:
            report = await self.bot.guild_admin.forget(guild_id, member.id, by=actor)
        except MemberBusy as busy:
            raise UserFacingError(
                _(
                    "That member still has {count} job(s) in progress. "
                    "Try again once they have finished.",
                    count=busy.active_jobs,
                )
            ) from None
        t = private_words(interaction)
        withdrawn = (
            t(", {count} waiting request(s) withdrawn", count=report.requests_withdrawn)
            if report.requests_withdrawn
            else ""
        )
        await reply_ephemeral(
            interaction,
            t(
                "Forgot {member}: {jobs} job(s) with their prompts deleted{withdrawn}, {grants} "
                "grant(s) removed. The credits they spent still count for the pool, under no "
                "name.",
                member=who,
                jobs=report.jobs_deleted,
                withdrawn=withdrawn,
                grants=report.grants_deleted,
            ),
        )

    @app_commands.command(
        name=C_("command", "audit"), description=N_("The latest moderator actions.")
    )
    @app_commands.describe(count=N_("How many (1-25)"))
    async def audit(
        self, interaction: Interaction, count: app_commands.Range[int, 1, 25] = 10
    ) -> None:
        guild_id, _actor = self._ids(interaction)
        check_range("count", count, 1, 25)
        entries = await self.bot.guild_admin.audit(guild_id, limit=count)
        t = private_words(interaction)
        embed = discord.Embed(title=t("Moderator actions"), colour=discord.Colour.blurple())
        found = pages(audit_line(e) for e in entries)
        embed.description = found[0] if found else t("None yet.")
        await reply_ephemeral(
            interaction,
            t("The latest {count} action(s), newest first:", count=len(entries)),
            embed,
        )
