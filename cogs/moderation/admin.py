"""`/admin`: the moderators' controls for budgets, grants, the blocklist, channels, bans, pause.

Channels and the mod-log live in ``places.py``, bans, forgetting and the audit trail in
``members.py``: mixins of the same cog.

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

from bot.errors import UserFacingError
from bot.i18n import C_, N_, Words, _
from bot.models import (
    KEEP,
    MAX_CONCURRENT,
    MAX_CREDITS,
)
from bot.quota import Period
from bot.tasks import TaskSet
from cogs._i18n import private_words
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
    blocklist_embed,
    budget_notes,
    code,
    member_state,
    pages,
    rule_line,
    user_mention,
)
from cogs.moderation.expiry import ApprovalExpiry
from cogs.moderation.members import MemberCommands
from cogs.moderation.places import PlacesCommands

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)

# Names as members read them that discord.py takes from the parameters and their Literal types.
OPTION_NAMES = (
    C_("command", "period"),
    C_("command", "pool"),
    C_("command", "member_credits"),
    C_("command", "member_jobs"),
    C_("command", "server_jobs"),
    C_("command", "role"),
    C_("command", "credits"),
    C_("command", "member"),
    C_("command", "reason"),
    C_("command", "enabled"),
    C_("command", "confirm"),
    C_("command", "count"),
    C_("command", "pattern"),
    C_("command", "kind"),
    C_("command", "rule"),
    C_("command", "page"),
    C_("command", "channel"),
)
CHOICE_NAMES = (
    C_("choice", "day"),
    C_("choice", "week"),
    C_("choice", "month"),
    C_("choice", "word"),
    C_("choice", "regex"),
)


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class AdminCog(
    PlacesCommands,
    MemberCommands,
    commands.GroupCog,
    group_name=C_("command", "admin"),
    group_description=N_("Moderators: budgets, grants, blocklist, channels, bans, pause."),
):
    """Moderator commands. Every one of them needs Manage Server, checked on each use."""

    blocklist = app_commands.Group(
        name=C_("command", "blocklist"), description=N_("Words and patterns refused in prompts.")
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

    async def _member_state(
        self, guild_id: int, member: discord.User | discord.Member, t: Words
    ) -> str:
        roles = [r.id for r in getattr(member, "roles", [])]
        usage = await self.bot.guild_admin.usage(guild_id, member.id, roles)
        return member_state(member.id, usage, t)

    # -- overview -----------------------------------------------------------------------------

    @app_commands.command(
        name=C_("command", "show"), description=N_("Every setting, and the pool this period.")
    )
    async def show(self, interaction: Interaction) -> None:
        guild_id, _actor = self._ids(interaction)
        t = private_words(interaction)
        await reply_ephemeral(
            interaction, t("Current settings:"), await self._overview(guild_id, t)
        )

    # -- budgets --------------------------------------------------------------------------------

    @app_commands.command(
        name=C_("command", "budget"),
        description=N_("Change the server's budgets; options left out stay as they are."),
    )
    @app_commands.rename(reset_to_default=C_("command", "reset-to-default"))
    @app_commands.describe(
        period=N_("How often budgets start afresh (UTC)"),
        pool=N_("Credits all members together may use per period"),
        member_credits=N_("Credits one member may use per period (roles can raise it)"),
        member_jobs=N_("Videos one member may have in progress at once"),
        server_jobs=N_("Videos the whole server may have in progress at once"),
        reset_to_default=N_("Put every budget back to the bot's configured defaults"),
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
                _("Use `reset-to-default` on its own, or leave it out to set values.")
            )
        if not reset_to_default and not given:
            raise UserFacingError(
                _(
                    "Nothing to change: give at least one option (or `reset-to-default`). "
                    "`/admin show` shows the current budgets."
                )
            )
        with refused_as(N_("Budgets not changed")):
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
        t = private_words(interaction)
        head = t("Budgets back to the defaults.") if reset_to_default else t("Budgets updated.")
        notes = "".join(f"\n⚠️ {t(n)}" for n in budget_notes(settings))
        await reply_ephemeral(interaction, head + notes, await self._overview(guild_id, t))

    @app_commands.command(
        name=C_("command", "role-limit"),
        description=N_("Give members with a role a larger cap; no credits: remove."),
    )
    @app_commands.describe(
        role=N_("The role"),
        credits=N_("Credits per period for its members; leave out to remove the limit"),
    )
    async def role_limit(
        self, interaction: Interaction, role: discord.Role, credits: Credits | None = None
    ) -> None:
        guild_id, actor = self._ids(interaction)
        check_range("credits", credits, 0, MAX_CREDITS)
        with refused_as(N_("Role limit not changed")):
            await self.bot.guild_admin.set_role_limit(guild_id, role.id, credits, by=actor)
        settings = await self._settings(guild_id)
        t = private_words(interaction)
        if credits is None:
            head = t("{role} has no limit of its own any more.", role=f"<@&{role.id}>")
        else:
            head = t(
                "Members with {role} may use up to {credits} per period.",
                role=f"<@&{role.id}>",
                credits=n_credits(credits, t),
            )
            if credits <= settings.member_credits:
                head += "\n⚠️ " + t(
                    "That is not above the server's member cap ({cap}), so it changes nothing: "
                    "a member gets the most generous of the default and their roles.",
                    cap=settings.member_credits,
                )
        await reply_ephemeral(interaction, head, await self._overview(guild_id, t))

    @app_commands.command(
        name=C_("command", "grant"),
        description=N_("Extra credits for one member, this period only."),
    )
    @app_commands.describe(
        member=N_("Who gets them"),
        credits=N_("Credits to add to their cap (negative takes credits back)"),
        reason=N_("Why (kept in the audit trail)"),
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
            raise UserFacingError(_("A grant of 0 credits changes nothing."))
        with refused_as(N_("Nothing granted")):
            grant = await self.bot.guild_admin.grant(
                guild_id, member.id, credits, by=actor, reason=reason
            )
        t = private_words(interaction)
        verb = (
            N_("Granted {credits} for {member} in {period} (grants this period: {total}).")
            if credits > 0
            else N_("Took back {credits} for {member} in {period} (grants this period: {total}).")
        )
        head = (
            t(
                verb,
                credits=n_credits(abs(credits), t),
                member=user_mention(member.id),
                period=grant.period_key,
                total=f"{grant.period_total:+d}",
            )
            + "\n"
            + await self._member_state(guild_id, member, t)
        )
        await reply_ephemeral(interaction, head)

    @app_commands.command(
        name=C_("command", "reset"),
        description=N_("Start this period afresh for one member, or the whole server."),
    )
    @app_commands.describe(
        member=N_("Only this member's cap (leave out: the pool and every member)")
    )
    async def reset(self, interaction: Interaction, member: discord.User | None = None) -> None:
        guild_id, actor = self._ids(interaction)
        done = await self.bot.guild_admin.reset(
            guild_id, None if member is None else member.id, by=actor
        )
        t = private_words(interaction)
        if member is None:
            head = t(
                "Server usage reset for {period}: {credits} no longer count; the pool and every "
                "member's cap start afresh.",
                period=done.period_key,
                credits=n_credits(done.forgiven, t),
            )
            await reply_ephemeral(interaction, head, await self._overview(guild_id, t))
            return
        head = (
            t(
                "Usage of {member} reset for {period}: {credits} no longer count against their "
                "cap (the pool still counts them).",
                member=user_mention(member.id),
                period=done.period_key,
                credits=n_credits(done.forgiven, t),
            )
            + "\n"
            + await self._member_state(guild_id, member, t)
        )
        await reply_ephemeral(interaction, head)

    @app_commands.command(
        name=C_("command", "approvals"),
        description=N_("Send requests over a member's cap to the moderators."),
    )
    @app_commands.describe(enabled=N_("On: over-cap requests wait for a moderator; off: refused"))
    async def approvals(self, interaction: Interaction, enabled: bool) -> None:
        guild_id, actor = self._ids(interaction)
        await self.bot.guild_admin.set_approvals(guild_id, enabled, by=actor)
        settings = await self._settings(guild_id)
        t = private_words(interaction)
        if enabled:
            head = t(
                "Approvals on: a request over the member's cap waits for a moderator while "
                "the pool has credits."
            )
            if settings.modlog_channel_id is None:
                head += "\n⚠️ " + t(
                    "No mod-log channel is set, so nobody will see the requests: "
                    "`/admin modlog set`."
                )
        else:
            head = t("Approvals off: a request over the member's cap is refused.")
        await reply_ephemeral(interaction, head, await self._overview(guild_id, t))

    # -- kill switch ----------------------------------------------------------------------------

    @app_commands.command(
        name=C_("command", "pause"), description=N_("Stop all new videos on this server.")
    )
    async def pause(self, interaction: Interaction) -> None:
        guild_id, actor = self._ids(interaction)
        await self.bot.guild_admin.set_paused(guild_id, True, by=actor)
        t = private_words(interaction)
        head = "⏸️ " + t(
            "Paused: new `/animate` requests are refused and waiting requests cannot be "
            "approved. Videos already in progress finish. `/admin resume` turns it back on."
        )
        await reply_ephemeral(interaction, head, await self._overview(guild_id, t))

    @app_commands.command(
        name=C_("command", "resume"), description=N_("Allow new videos again after a pause.")
    )
    async def resume(self, interaction: Interaction) -> None:
        guild_id, actor = self._ids(interaction)
        await self.bot.guild_admin.set_paused(guild_id, False, by=actor)
        t = private_words(interaction)
        await reply_ephemeral(
            interaction,
            "▶️ " + t("Resumed: members can make videos again."),
            await self._overview(guild_id, t),
        )

    # -- blocklist -------------------------------------------------------------------------------

    @blocklist.command(
        name=C_("command", "add"), description=N_("Refuse prompts containing a word or pattern.")
    )
    @app_commands.describe(
        pattern=N_("The word or phrase (whole words), or a regular expression"),
        kind=N_("word (default) or regex; both ignore case"),
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
        with refused_as(
            N_("That word was not added") if kind == "word" else N_("That regex was not added")
        ):
            rule = await self.bot.guild_admin.add_block_rule(guild_id, kind, pattern, by=actor)
        rules = await self.bot.guild_admin.block_rules(guild_id)
        t = private_words(interaction)
        blocks = (
            N_(
                'Rule #{number} blocks the word {pattern}. Members refused by it are told "rule '
                '#{number}", never the pattern.'
            )
            if kind == "word"
            else N_(
                "Rule #{number} blocks the regex {pattern}. Members refused by it are told "
                '"rule #{number}", never the pattern.'
            )
        )
        await reply_ephemeral(
            interaction,
            t(blocks, number=rule.id, pattern=code(rule.pattern)),
            blocklist_embed(rules, page=len(pages(rule_line(r) for r in rules)), t=t),
        )

    @blocklist.command(name=C_("command", "remove"), description=N_("Remove a rule by its number."))
    @app_commands.describe(rule=N_("The rule's number, as in /admin blocklist list"))
    async def blocklist_remove(
        self, interaction: Interaction, rule: app_commands.Range[int, 1, None]
    ) -> None:
        guild_id, actor = self._ids(interaction)
        removed = await self.bot.guild_admin.remove_block_rule(guild_id, rule, by=actor)
        if removed is None:
            raise UserFacingError(
                _("There is no rule #{number}. `/admin blocklist list` shows them.", number=rule)
            )
        rules = await self.bot.guild_admin.block_rules(guild_id)
        t = private_words(interaction)
        await reply_ephemeral(
            interaction,
            t(
                "Removed rule #{number} ({kind} {pattern}).",
                number=rule,
                kind=t.lookup("choice", removed.kind) or removed.kind,
                pattern=code(removed.pattern),
            ),
            blocklist_embed(rules, page=1, t=t),
        )

    @blocklist.command(name=C_("command", "list"), description=N_("Every rule, with its number."))
    @app_commands.describe(page=N_("Page, when the list is long"))
    async def blocklist_list(
        self, interaction: Interaction, page: app_commands.Range[int, 1, None] = 1
    ) -> None:
        guild_id, _actor = self._ids(interaction)
        rules = await self.bot.guild_admin.block_rules(guild_id)
        t = private_words(interaction)
        await reply_ephemeral(
            interaction,
            t("The blocklist has {count} rule(s).", count=len(rules)),
            blocklist_embed(rules, page, t=t),
        )
