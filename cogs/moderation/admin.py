"""`/admin`: the moderators' controls for budgets, grants, the blocklist, channels, bans, pause.

A guild-only ``GroupCog``. ``default_permissions(manage_guild=True)`` only hides it by default
(a server can change that), so :meth:`AdminCog.interaction_check` checks Manage Server on
every use. Every change goes through the store, which also writes the audit trail; each
command answers privately with the state it leaves behind.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import MemberBusy, UserFacingError
from bot.models import (
    KEEP,
    MAX_CONCURRENT,
    MAX_CREDITS,
)
from bot.quota import Period
from bot.tasks import TaskSet
from cogs._render import credits as n_credits
from cogs._tree import reply_ephemeral
from cogs.moderation.common import (
    Credits,
    Grant,
    Interaction,
    Jobs,
    check_range,
    refused_as,
)
from cogs.moderation.desk import ModLogDesk
from cogs.moderation.embeds import (
    audit_line,
    bans_embed,
    blocklist_embed,
    budget_notes,
    code,
    member_state,
    pages,
    rule_line,
    user_mention,
)
from cogs.moderation.expiry import ApprovalExpiry
from cogs.moderation.places import PlacesCommands

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class AdminCog(
    PlacesCommands,
    commands.GroupCog,
    group_name="admin",
    group_description="Moderators: budgets, grants, blocklist, channels, bans, pause.",
):
    """Moderator commands. Every one of them needs Manage Server, checked on each use."""

    blocklist = app_commands.Group(
        name="blocklist", description="Words and patterns refused in prompts."
    )

    def __init__(self, bot: SeedanceBot, desk: ModLogDesk) -> None:
        self.bot = bot
        self.tasks = TaskSet()
        self.expiry = ApprovalExpiry(bot, desk)

    async def cog_load(self) -> None:
        self.tasks.create(self.expiry.run(), name="approval-expiry")

    async def cog_unload(self) -> None:
        await self.tasks.cancel_all()

    async def interaction_check(self, interaction: Interaction, /) -> bool:
        """Manage Server, whatever the server set as the command's default permissions."""
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage()
        permissions = interaction.permissions
        if not (permissions.manage_guild or permissions.administrator):
            command = interaction.command.qualified_name if interaction.command else "admin"
            log.info(
                "guild %d: member %d without Manage Server tried /%s",
                interaction.guild_id,
                interaction.user.id,
                command,
            )
            raise app_commands.MissingPermissions(["manage_guild"])
        return True

    # -- helpers ------------------------------------------------------------------------------

    async def _member_state(self, guild_id: int, member: discord.User | discord.Member) -> str:
        roles = [r.id for r in getattr(member, "roles", [])]
        return member_state(member.id, await self.bot.guild_admin.usage(guild_id, member.id, roles))

    # -- overview -----------------------------------------------------------------------------

    @app_commands.command(name="show", description="Every setting, and the pool this period.")
    async def show(self, interaction: Interaction) -> None:
        guild_id, _ = self._ids(interaction)
        await reply_ephemeral(interaction, "Current settings:", await self._overview(guild_id))

    # -- budgets --------------------------------------------------------------------------------

    @app_commands.command(
        name="budget", description="Change the server's budgets; options left out stay as they are."
    )
    @app_commands.rename(reset_to_default="reset-to-default")
    @app_commands.describe(
        period="How often budgets start afresh (UTC)",
        pool="Credits all members together may use per period",
        member_credits="Credits one member may use per period (roles can raise it)",
        member_jobs="Videos one member may have in progress at once",
        server_jobs="Videos the whole server may have in progress at once",
        reset_to_default="Put every budget back to the bot's configured defaults",
    )
    async def budget(
        self,
        interaction: Interaction,
        period: Literal["day", "week", "month"] | None = None,
        pool: Credits | None = None,
        member_credits: Credits | None = None,
        member_jobs: Jobs | None = None,
        server_jobs: Jobs | None = None,
        reset_to_default: bool = False,
    ) -> None:
        guild_id, actor = self._ids(interaction)
        given = [
            v for v in (period, pool, member_credits, member_jobs, server_jobs) if v is not None
        ]
        check_range("pool", pool, 0, MAX_CREDITS)
        check_range("member_credits", member_credits, 0, MAX_CREDITS)
        check_range("member_jobs", member_jobs, 1, MAX_CONCURRENT)
        check_range("server_jobs", server_jobs, 1, MAX_CONCURRENT)
        if reset_to_default and given:
            raise UserFacingError(
                "Use `reset-to-default` on its own, or leave it out to set values."
            )
        if not reset_to_default and not given:
            raise UserFacingError(
                "Nothing to change: give at least one option (or `reset-to-default`). "
                "`/admin show` shows the current budgets."
            )
        with refused_as("Budgets not changed"):
            if reset_to_default:
                await self.bot.guild_admin.set_budget(
                    guild_id,
                    by=actor,
                    period=None,
                    server_credits=None,
                    member_credits=None,
                    member_concurrent=None,
                    server_concurrent=None,
                )
            else:
                await self.bot.guild_admin.set_budget(
                    guild_id,
                    by=actor,
                    period=KEEP if period is None else Period(period),
                    server_credits=KEEP if pool is None else pool,
                    member_credits=KEEP if member_credits is None else member_credits,
                    member_concurrent=KEEP if member_jobs is None else member_jobs,
                    server_concurrent=KEEP if server_jobs is None else server_jobs,
                )
        settings = await self._settings(guild_id)
        head = "Budgets back to the defaults." if reset_to_default else "Budgets updated."
        notes = "".join(f"\n⚠️ {n}" for n in budget_notes(settings))
        await reply_ephemeral(interaction, head + notes, await self._overview(guild_id))

    @app_commands.command(
        name="role-limit", description="Give members with a role a larger cap; no credits: remove."
    )
    @app_commands.describe(
        role="The role", credits="Credits per period for its members; leave out to remove the limit"
    )
    async def role_limit(
        self, interaction: Interaction, role: discord.Role, credits: Credits | None = None
    ) -> None:
        guild_id, actor = self._ids(interaction)
        check_range("credits", credits, 0, MAX_CREDITS)
        with refused_as("Role limit not changed"):
            await self.bot.guild_admin.set_role_limit(guild_id, role.id, credits, by=actor)
        settings = await self._settings(guild_id)
        if credits is None:
            head = f"<@&{role.id}> has no limit of its own any more."
        else:
            head = f"Members with <@&{role.id}> may use up to {n_credits(credits)} per period."
            if credits <= settings.member_credits:
                head += (
                    f"\n⚠️ That is not above the server's member cap ({settings.member_credits}), "
                    "so it changes nothing: a member gets the most generous of the default and "
                    "their roles."
                )
        await reply_ephemeral(interaction, head, await self._overview(guild_id))

    @app_commands.command(
        name="grant", description="Extra credits for one member, this period only."
    )
    @app_commands.describe(
        member="Who gets them",
        credits="Credits to add to their cap (negative takes credits back)",
        reason="Why (kept in the audit trail)",
    )
    async def grant(
        self,
        interaction: Interaction,
        member: discord.User,
        credits: Grant,
        reason: app_commands.Range[str, 1, 200] | None = None,
    ) -> None:
        guild_id, actor = self._ids(interaction)
        check_range("credits", credits, -MAX_CREDITS, MAX_CREDITS)
        if credits == 0:
            raise UserFacingError("A grant of 0 credits changes nothing.")
        with refused_as("Nothing granted"):
            grant = await self.bot.guild_admin.grant(
                guild_id, member.id, credits, by=actor, reason=reason
            )
        verb = "Granted" if credits > 0 else "Took back"
        head = (
            f"{verb} {n_credits(abs(credits))} for {user_mention(member.id)} in {grant.period_key} "
            f"(grants this period: {grant.period_total:+d}).\n"
            + await self._member_state(guild_id, member)
        )
        await reply_ephemeral(interaction, head)

    @app_commands.command(
        name="reset", description="Start this period afresh for one member, or the whole server."
    )
    @app_commands.describe(member="Only this member's cap (leave out: the pool and every member)")
    async def reset(self, interaction: Interaction, member: discord.User | None = None) -> None:
        guild_id, actor = self._ids(interaction)
        done = await self.bot.guild_admin.reset(
            guild_id, None if member is None else member.id, by=actor
        )
        if member is None:
            head = (
                f"Server usage reset for {done.period_key}: {n_credits(done.forgiven)} no longer "
                "count; the pool and every member's cap start afresh."
            )
            await reply_ephemeral(interaction, head, await self._overview(guild_id))
            return
        head = (
            f"Usage of {user_mention(member.id)} reset for {done.period_key}: "
            f"{n_credits(done.forgiven)} no longer count against their cap (the pool still "
            "counts them).\n" + await self._member_state(guild_id, member)
        )
        await reply_ephemeral(interaction, head)

    @app_commands.command(
        name="approvals", description="Send requests over a member's cap to the moderators."
    )
    @app_commands.describe(enabled="On: over-cap requests wait for a moderator; off: refused")
    async def approvals(self, interaction: Interaction, enabled: bool) -> None:
        guild_id, actor = self._ids(interaction)
        await self.bot.guild_admin.set_approvals(guild_id, enabled, by=actor)
        settings = await self._settings(guild_id)
        if enabled:
            head = (
                "Approvals on: a request over the member's cap waits for a moderator while "
                "the pool has credits."
            )
            if settings.modlog_channel_id is None:
                head += (
                    "\n⚠️ No mod-log channel is set, so nobody will see the requests: "
                    "`/admin modlog set`."
                )
        else:
            head = "Approvals off: a request over the member's cap is refused."
        await reply_ephemeral(interaction, head, await self._overview(guild_id))

    # -- kill switch ----------------------------------------------------------------------------

    @app_commands.command(name="pause", description="Stop all new videos on this server.")
    async def pause(self, interaction: Interaction) -> None:
        guild_id, actor = self._ids(interaction)
        await self.bot.guild_admin.set_paused(guild_id, True, by=actor)
        head = (
            "⏸️ Paused: new `/animate` requests are refused and waiting requests cannot be "
            "approved. Videos already in progress finish. `/admin resume` turns it back on."
        )
        await reply_ephemeral(interaction, head, await self._overview(guild_id))

    @app_commands.command(name="resume", description="Allow new videos again after a pause.")
    async def resume(self, interaction: Interaction) -> None:
        guild_id, actor = self._ids(interaction)
        await self.bot.guild_admin.set_paused(guild_id, False, by=actor)
        await reply_ephemeral(
            interaction, "▶️ Resumed: members can make videos again.", await self._overview(guild_id)
        )

    # -- members --------------------------------------------------------------------------------

    @app_commands.command(name="ban", description="Stop a member from using the bot here.")
    @app_commands.describe(member="Who", reason="Why (kept in the audit trail)")
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
        head = (
            f"{who} can no longer use the bot here."
            if banned
            else f"{who} was already banned from the bot."
        )
        await reply_ephemeral(interaction, f"{head} Banned members: {count}.")

    @app_commands.command(name="unban", description="Let a banned member use the bot again.")
    @app_commands.describe(member="Who")
    async def unban(self, interaction: Interaction, member: discord.User) -> None:
        guild_id, actor = self._ids(interaction)
        unbanned = await self.bot.guild_admin.unban(guild_id, member.id, by=actor)
        count = len(await self.bot.guild_admin.bans(guild_id))
        who = user_mention(member.id)
        head = f"{who} can use the bot again." if unbanned else f"{who} was not banned."
        await reply_ephemeral(interaction, f"{head} Banned members: {count}.")

    @app_commands.command(name="bans", description="Members banned from the bot here.")
    async def bans(self, interaction: Interaction) -> None:
        guild_id, _ = self._ids(interaction)
        found = await self.bot.guild_admin.bans(guild_id)
        await reply_ephemeral(interaction, f"Banned members: {len(found)}.", bans_embed(found))

    @app_commands.command(
        name="forget", description="Delete one member's prompts and jobs from the bot's records."
    )
    @app_commands.describe(
        member="Whose records to delete",
        confirm="True to delete; this cannot be undone",
    )
    async def forget(self, interaction: Interaction, member: discord.User, confirm: bool) -> None:
        guild_id, actor = self._ids(interaction)
        who = user_mention(member.id)
        if not confirm:
            raise UserFacingError(
                f"Nothing was deleted. To delete {who}'s prompts and jobs for good, run the "
                "command again with `confirm: True`."
            )
        try:
            report = await self.bot.guild_admin.forget(guild_id, member.id, by=actor)
        except MemberBusy as busy:
            raise UserFacingError(
                f"That member still has {busy.active_jobs} job(s) in progress. "
                "Try again once they have finished."
            ) from None
        withdrawn = (
            f", {report.requests_withdrawn} waiting request(s) withdrawn"
            if report.requests_withdrawn
            else ""
        )
        await reply_ephemeral(
            interaction,
            f"Forgot {who}: {report.jobs_deleted} job(s) with their prompts deleted"
            f"{withdrawn}, {report.grants_deleted} grant(s) removed. The credits they spent "
            "still count for the pool, under no name.",
        )

    @app_commands.command(name="audit", description="The latest moderator actions.")
    @app_commands.describe(count="How many (1-25)")
    async def audit(
        self, interaction: Interaction, count: app_commands.Range[int, 1, 25] = 10
    ) -> None:
        guild_id, _ = self._ids(interaction)
        check_range("count", count, 1, 25)
        entries = await self.bot.guild_admin.audit(guild_id, limit=count)
        embed = discord.Embed(title="Moderator actions", colour=discord.Colour.blurple())
        found = pages(audit_line(e) for e in entries)
        embed.description = found[0] if found else "None yet."
        await reply_ephemeral(
            interaction, f"The latest {len(entries)} action(s), newest first:", embed
        )

    # -- blocklist -------------------------------------------------------------------------------

    @blocklist.command(name="add", description="Refuse prompts containing a word or pattern.")
    @app_commands.describe(
        pattern="The word or phrase (whole words), or a regular expression",
        kind="word (default) or regex; both ignore case",
    )
    async def blocklist_add(
        self,
        interaction: Interaction,
        pattern: app_commands.Range[str, 1, 200],
        kind: Literal["word", "regex"] = "word",
    ) -> None:
        guild_id, actor = self._ids(interaction)
        # A regex is timed on adversarial prompts in a subprocess: that can take seconds.
        await interaction.response.defer(ephemeral=True, thinking=True)
        with refused_as(f"That {kind} was not added"):
            rule = await self.bot.guild_admin.add_block_rule(guild_id, kind, pattern, by=actor)
        rules = await self.bot.guild_admin.block_rules(guild_id)
        await reply_ephemeral(
            interaction,
            f"Rule #{rule.id} blocks the {kind} {code(rule.pattern)}. Members refused by it "
            f'are told "rule #{rule.id}", never the pattern.',
            blocklist_embed(rules, page=len(pages(rule_line(r) for r in rules))),
        )

    @blocklist.command(name="remove", description="Remove a rule by its number.")
    @app_commands.describe(rule="The rule's number, as in /admin blocklist list")
    async def blocklist_remove(
        self, interaction: Interaction, rule: app_commands.Range[int, 1, None]
    ) -> None:
        guild_id, actor = self._ids(interaction)
        removed = await self.bot.guild_admin.remove_block_rule(guild_id, rule, by=actor)
        if removed is None:
            raise UserFacingError(f"There is no rule #{rule}. `/admin blocklist list` shows them.")
        rules = await self.bot.guild_admin.block_rules(guild_id)
        await reply_ephemeral(
            interaction,
            f"Removed rule #{rule} ({removed.kind} {code(removed.pattern)}).",
            blocklist_embed(rules, page=1),
        )

    @blocklist.command(name="list", description="Every rule, with its number.")
    @app_commands.describe(page="Page, when the list is long")
    async def blocklist_list(
        self, interaction: Interaction, page: app_commands.Range[int, 1, None] = 1
    ) -> None:
        guild_id, _ = self._ids(interaction)
        rules = await self.bot.guild_admin.block_rules(guild_id)
        await reply_ephemeral(
            interaction, f"The blocklist has {len(rules)} rule(s).", blocklist_embed(rules, page)
        )
