"""`/admin` driven with autospecced Discord objects over the real store (a SQLite file).

Each test reads what the moderator was shown (always privately) and what the store now holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import create_autospec

import aiohttp
import discord
import pytest
from discord import app_commands

from bot.app import SeedanceBot
from bot.config import Config, DatabaseConfig, QuotaConfig
from bot.models import GuildDefaults, GuildSettings, JobState, NewJob
from bot.moderation.gates import RequestRefused
from bot.quota import Limits, Period, period_window
from bot.store import Store, open_store
from tests.harness.discord_fakes import FakeChannel, Member, invoke, make_interaction, snowflake
from tests.harness.store_calls import check_gates, effective_limits, reserve_job

MANAGE_SERVER = "You need the Manage Server permission to do that."


@dataclass
class Admin:
    bot: SeedanceBot
    store: Store
    channel: FakeChannel
    mod: Member
    bob: Member

    @property
    def guild_id(self) -> int:
        return self.channel.guild_id

    async def run(
        self, name: str, *, by: Member | None = None, **options: Any
    ) -> tuple[str, discord.Embed | None]:
        """Run ``/<name>`` as ``by`` (the moderator by default): the one private answer."""
        interaction = make_interaction(self.bot, by or self.mod, self.channel)
        await invoke(self.bot.tree, interaction, name, **options)
        return only_answer(interaction)

    @property
    def defaults(self) -> GuildDefaults:
        return self.bot.config.quota.guild_defaults()

    async def settings(self) -> GuildSettings:
        return await self.store.guild_settings(self.guild_id, self.defaults)


def only_answer(interaction: discord.Interaction[Any]) -> tuple[str, discord.Embed | None]:
    response: Any = interaction.response
    followup: Any = interaction.followup
    calls = [*response.send_message.await_args_list, *followup.send.await_args_list]
    assert len(calls) == 1, f"expected one answer, got {calls}"
    call = calls[0]
    assert call.kwargs.get("ephemeral") is True, "admin answers must be private"
    content = call.args[0] if call.args else call.kwargs.get("content", "")
    return str(content), call.kwargs.get("embed")


def fields(embed: discord.Embed | None) -> dict[str, str]:
    assert embed is not None
    # "Pool usage (2026-11-20)" is looked up as "Pool usage".
    return {(f.name or "").split(" (")[0]: f.value or "" for f in embed.fields}


def user(member: Member, roles: Iterable[int] = ()) -> discord.Member:
    """A member as Discord resolves a user option."""
    resolved = create_autospec(discord.Member, instance=True)
    resolved.id = member.id
    resolved.display_name = member.name
    role_objects = []
    for role_id in roles:
        role = create_autospec(discord.Role, instance=True)
        role.id = role_id
        role_objects.append(role)
    resolved.roles = role_objects
    return resolved


def role(role_id: int) -> discord.Role:
    resolved = create_autospec(discord.Role, instance=True)
    resolved.id = role_id
    return resolved


def text_channel(
    channel_id: int | None = None, *, bot_can: discord.Permissions | None = None
) -> discord.TextChannel:
    channel = create_autospec(discord.TextChannel, instance=True)
    channel.id = channel_id or snowflake()
    guild = create_autospec(discord.Guild, instance=True)
    guild.me = create_autospec(discord.Member, instance=True)
    channel.guild = guild
    channel.permissions_for.return_value = bot_can or discord.Permissions(
        view_channel=True, send_messages=True, embed_links=True, attach_files=True
    )
    return channel


async def add_job(
    store: Store,
    guild_id: int,
    member_id: int,
    *,
    prompt: str = "a boat at dawn",
    cost: int = 2,
    outcome: JobState | None = JobState.DELIVERED,
    now: datetime | None = None,
) -> int:
    """A job accepted now (through the real reserve), then delivered, failed or left open."""
    when = now or datetime.now(UTC)
    job = await reserve_job(
        store,
        NewJob(
            guild_id=guild_id,
            channel_id=snowflake(),
            member_id=member_id,
            prompt=prompt,
            image_url="https://cdn.example/frame.png",
            last_frame_url=None,
            resolution="480p",
            duration=5,
        ),
        cost=cost,
        limits=Limits(
            member_credits=10**6, server_credits=10**6, member_concurrent=50, server_concurrent=50
        ),
        window=period_window(Period.DAY, when),
        now=when,
    )
    if outcome is JobState.DELIVERED:
        await store.finish_delivered(job.id, result_message_id=None, now=when)
    elif outcome is not None:
        await store.finish_failed(job.id, outcome, error="provider failed", now=when)
    return job.id


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[Admin]:
    config = Config(
        database=DatabaseConfig(path=tmp_path / "bot.sqlite3"),
        quota=QuotaConfig(period=Period.DAY, member_credits=10, server_credits=100),
    )
    async with aiohttp.ClientSession() as http, open_store(config.database.path) as store:
        bot = SeedanceBot(config, http_session=http, store=store, runcomfy_token="t")
        await bot.load_extension("cogs.moderation")
        try:
            yield Admin(
                bot=bot,
                store=store,
                channel=FakeChannel(snowflake(), snowflake()),
                mod=Member("mod", moderator=True),
                bob=Member("bob"),
            )
        finally:
            await bot.unload_extension("cogs.moderation")
            await bot.runner.close()


# -- the command tree -------------------------------------------------------------------------


def admin_group(bot: SeedanceBot) -> app_commands.Group:
    group = bot.tree.get_command("admin")
    assert isinstance(group, app_commands.Group)
    return group


async def test_admin_is_a_guild_only_group_hidden_from_non_moderators(admin: Admin) -> None:
    group = admin_group(admin.bot)
    payload = group.to_dict(admin.bot.tree)
    assert payload["contexts"] == [0]  # guild only
    assert (
        int(payload["default_member_permissions"]) == discord.Permissions(manage_guild=True).value
    )
    assert len(group.commands) <= 25
    names = {c.qualified_name for c in group.walk_commands()}
    assert {
        "admin show",
        "admin budget",
        "admin role-limit",
        "admin grant",
        "admin reset",
        "admin approvals",
        "admin pause",
        "admin resume",
        "admin ban",
        "admin unban",
        "admin forget",
        "admin blocklist add",
        "admin blocklist remove",
        "admin blocklist list",
        "admin channels allow",
        "admin channels disallow",
        "admin channels clear",
        "admin channels list",
        "admin modlog set",
        "admin modlog clear",
    } <= names
    for command in group.walk_commands():
        assert 1 <= len(command.description) <= 100
        if isinstance(command, app_commands.Command):
            for parameter in command.parameters:
                assert 1 <= len(parameter.description) <= 100


# -- show and budgets ---------------------------------------------------------------------------


async def test_show_on_a_fresh_server_lists_the_defaults_and_the_pool(admin: Admin) -> None:
    await add_job(admin.store, admin.guild_id, admin.bob.id, cost=3)
    _, embed = await admin.run("admin show")
    shown = fields(embed)
    assert "day" in shown["Period"] and "default" in shown["Period"]
    assert shown["Server pool"].startswith("100 credits per day")
    assert shown["Member cap"].startswith("10 credits per day")
    tomorrow = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
        days=1
    )
    assert "3 credits used of 100" in shown["Pool usage"]
    assert "97 credits left" in shown["Pool usage"]
    assert f"<t:{int(tomorrow.timestamp())}:R>" in shown["Pool usage"]
    assert "per member 1" in shown["Jobs at once"] and "per server 5" in shown["Jobs at once"]
    assert shown["Role limits"] == "none"
    assert (shown["Approvals"], shown["Paused"], shown["Mod-log"]) == ("off", "no", "not set")
    assert shown["Allowed channels"] == "every channel"
    assert (shown["Banned members"], shown["Blocklist"]) == ("0", "0 rule(s)")


async def test_budget_changes_what_it_is_given_and_shows_the_result(admin: Admin) -> None:
    text, embed = await admin.run(
        "admin budget", period="week", pool=500, member_credits=20, member_jobs=2, server_jobs=8
    )
    assert text.startswith("Budgets updated.")
    shown = fields(embed)
    assert shown["Period"] == "week (UTC)"
    assert shown["Server pool"] == "500 credits per week"
    assert shown["Member cap"] == "20 credits per week"
    assert shown["Jobs at once"] == "per member 2 · per server 8"
    settings = await admin.settings()
    assert (settings.period, settings.server_credits, settings.member_credits) == (
        Period.WEEK,
        500,
        20,
    )
    assert (settings.member_concurrent, settings.server_concurrent) == (2, 8)

    # Options left out stay as they were.
    _, embed = await admin.run("admin budget", pool=50)
    shown = fields(embed)
    assert shown["Server pool"] == "50 credits per week"
    assert shown["Member cap"] == "20 credits per week"

    text, embed = await admin.run("admin budget", reset_to_default=True)
    assert text.startswith("Budgets back to the defaults.")
    shown = fields(embed)
    assert shown["Server pool"] == "100 credits per day *(default)*"
    assert (await admin.settings()).customised == frozenset()


async def test_budget_refuses_bad_values_and_changes_nothing(admin: Admin) -> None:
    text, _ = await admin.run("admin budget", pool=-5)
    assert text == "`pool` must be a whole number from 0 to 1,000,000,000."
    text, _ = await admin.run("admin budget", member_jobs=0)
    assert "`member_jobs` must be a whole number from 1 to 1,000" in text
    text, _ = await admin.run("admin budget")
    assert text.startswith("Nothing to change")
    text, _ = await admin.run("admin budget", pool=5, reset_to_default=True)
    assert "on its own" in text
    assert (await admin.settings()).customised == frozenset()
    assert await admin.store.audit_log(admin.guild_id) == []


async def test_budget_warns_about_a_cap_larger_than_the_pool(admin: Admin) -> None:
    text, _ = await admin.run("admin budget", pool=5, member_credits=20)
    assert "member cap is larger than the whole pool" in text


async def test_role_limit_raises_members_of_the_role_and_can_be_removed(admin: Admin) -> None:
    vip = snowflake()
    text, embed = await admin.run("admin role-limit", role=role(vip), credits=40)
    assert f"<@&{vip}>" in text and "40 credits" in text
    assert fields(embed)["Role limits"] == f"<@&{vip}>: 40 credits"
    limits = await effective_limits(
        admin.store,
        admin.guild_id,
        admin.bob.id,
        [vip],
        defaults=admin.defaults,
        now=datetime.now(UTC),
    )
    assert limits.member_credits == 40

    text, embed = await admin.run("admin role-limit", role=role(vip))
    assert "no limit of its own" in text
    assert fields(embed)["Role limits"] == "none"

    text, _ = await admin.run("admin role-limit", role=role(vip), credits=5)
    assert "changes nothing" in text  # below the default cap of 10
    text, _ = await admin.run("admin role-limit", role=role(vip), credits=-1)
    assert text == "`credits` must be a whole number from 0 to 1,000,000,000."


async def test_grant_adds_to_one_members_cap_this_period(admin: Admin) -> None:
    text, _ = await admin.run(
        "admin grant", member=user(admin.bob), credits=5, reason="contest winner"
    )
    assert f"Granted 5 credits for <@{admin.bob.id}>" in text
    assert "0 credits used of 15 · 15 credits left" in text
    usage = await admin.store.member_usage(
        admin.guild_id,
        admin.bob.id,
        role_ids=[],
        defaults=admin.defaults,
        now=datetime.now(UTC),
    )
    assert usage.member_limit == 15
    [entry] = await admin.store.audit_log(admin.guild_id)
    assert entry.action == "grant" and "contest winner" in entry.detail

    text, _ = await admin.run("admin grant", member=user(admin.bob), credits=-3)
    assert text.startswith("Took back 3 credits") and "of 12" in text
    text, _ = await admin.run("admin grant", member=user(admin.bob), credits=0)
    assert text == "A grant of 0 credits changes nothing."


async def test_reset_one_member_or_the_whole_server(admin: Admin) -> None:
    await add_job(admin.store, admin.guild_id, admin.bob.id, cost=4)
    text, _ = await admin.run("admin reset", member=user(admin.bob))
    assert "4 credits no longer count against their cap" in text
    assert "0 credits used of 10" in text
    _, embed = await admin.run("admin show")
    assert "4 credits used of 100" in fields(embed)["Pool usage"]  # the pool still counts them

    text, embed = await admin.run("admin reset")
    assert text.startswith("Server usage reset") and "4 credits no longer count" in text
    assert "0 credits used of 100" in fields(embed)["Pool usage"]


# -- switches -----------------------------------------------------------------------------------


async def test_approvals_on_and_off(admin: Admin) -> None:
    text, embed = await admin.run("admin approvals", enabled=True)
    assert text.startswith("Approvals on") and "No mod-log channel" in text
    assert fields(embed)["Approvals"] == "on"
    assert (await admin.settings()).approvals is True
    text, embed = await admin.run("admin approvals", enabled=False)
    assert text.startswith("Approvals off")
    assert fields(embed)["Approvals"] == "off"


async def test_pause_refuses_new_videos_until_resume(admin: Admin) -> None:
    text, embed = await admin.run("admin pause")
    assert text.startswith("⏸️ Paused")
    assert fields(embed)["Paused"] == "yes"
    with pytest.raises(RequestRefused) as refused:
        await check_gates(admin.store, admin.guild_id, admin.bob.id, admin.channel.id)
    assert refused.value.reason == "paused"
    text, embed = await admin.run("admin resume")
    assert text.startswith("▶️ Resumed")
    assert fields(embed)["Paused"] == "no"
    await check_gates(admin.store, admin.guild_id, admin.bob.id, admin.channel.id)


async def test_modlog_set_and_clear(admin: Admin) -> None:
    log_channel = text_channel()
    text, embed = await admin.run("admin modlog set", channel=log_channel)
    assert text == f"Mod-log: <#{log_channel.id}>."
    assert fields(embed)["Mod-log"] == f"<#{log_channel.id}>"
    assert (await admin.settings()).modlog_channel_id == log_channel.id

    mute = text_channel(bot_can=discord.Permissions(view_channel=True))
    text, _ = await admin.run("admin modlog set", channel=mute)
    assert "I cannot post there yet" in text

    await admin.run("admin approvals", enabled=True)
    text, embed = await admin.run("admin modlog clear")
    assert "Approvals are on, but requests have nowhere to go" in text
    assert fields(embed)["Mod-log"] == "not set"


async def test_channels_allow_disallow_clear_and_list(admin: Admin) -> None:
    first, second = text_channel(), text_channel()
    text, embed = await admin.run("admin channels allow", channel=first)
    assert "only works in the listed channels" in text
    assert embed is not None and f"<#{first.id}>" in (embed.description or "")
    await admin.run("admin channels allow", channel=second)
    with pytest.raises(RequestRefused):
        await check_gates(admin.store, admin.guild_id, admin.bob.id, admin.channel.id)

    text, embed = await admin.run("admin channels list")
    assert text == "2 channel(s) listed."
    assert embed is not None and embed.description == f"<#{first.id}>\n<#{second.id}>"

    text, _ = await admin.run("admin channels disallow", channel=first)
    assert text == f"<#{first.id}> removed from the list."
    assert (await admin.settings()).allowed_channels == frozenset({second.id})

    text, embed = await admin.run("admin channels clear")
    assert text.startswith("Removed 1 channel(s)")
    assert embed is not None and "Every channel" in (embed.description or "")
    await check_gates(admin.store, admin.guild_id, admin.bob.id, admin.channel.id)


# -- members ------------------------------------------------------------------------------------


async def test_ban_unban_and_the_ban_list(admin: Admin) -> None:
    text, _ = await admin.run("admin ban", member=user(admin.bob), reason="spam")
    assert text == f"<@{admin.bob.id}> can no longer use the bot here. Banned members: 1."
    assert await admin.store.is_banned(admin.guild_id, admin.bob.id)
    text, _ = await admin.run("admin ban", member=user(admin.bob))
    assert "already banned" in text

    text, embed = await admin.run("admin bans")
    assert text == "Banned members: 1."
    assert embed is not None and f"<@{admin.bob.id}>" in (embed.description or "")
    assert "spam" in (embed.description or "")
    _, embed = await admin.run("admin show")
    assert fields(embed)["Banned members"] == "1"

    text, _ = await admin.run("admin unban", member=user(admin.bob))
    assert text == f"<@{admin.bob.id}> can use the bot again. Banned members: 0."
    assert not await admin.store.is_banned(admin.guild_id, admin.bob.id)


async def test_forget_needs_confirmation_and_deletes_the_members_prompts(admin: Admin) -> None:
    await add_job(admin.store, admin.guild_id, admin.bob.id, prompt="my secret idea", cost=2)
    await add_job(admin.store, admin.guild_id, admin.bob.id, outcome=JobState.FAILED)

    text, _ = await admin.run("admin forget", member=user(admin.bob), confirm=False)
    assert text.startswith("Nothing was deleted")
    assert len(await admin.store.recent_jobs(admin.guild_id, admin.bob.id)) == 2

    open_job = await add_job(admin.store, admin.guild_id, admin.bob.id, outcome=None)
    text, _ = await admin.run("admin forget", member=user(admin.bob), confirm=True)
    assert "still has 1 job(s) in progress" in text
    await admin.store.finish_failed(
        open_job, JobState.CANCELLED, error="cancelled", now=datetime.now(UTC)
    )

    text, _ = await admin.run("admin forget", member=user(admin.bob), confirm=True)
    assert text.startswith(f"Forgot <@{admin.bob.id}>: 3 job(s) with their prompts deleted")
    assert await admin.store.recent_jobs(admin.guild_id, admin.bob.id) == []
    rows = await admin.store.usage_rows(guild_id=admin.guild_id)
    assert [(r.member_id, r.credits_charged) for r in rows] == [(0, 2)]  # the pool keeps it
    _, embed = await admin.run("admin show")
    assert "2 credits used of 100" in fields(embed)["Pool usage"]


async def test_audit_lists_the_latest_actions(admin: Admin) -> None:
    await admin.run("admin pause")
    await admin.run("admin ban", member=user(admin.bob))
    text, embed = await admin.run("admin audit", count=5)
    assert text.startswith("The latest 2 action(s)")
    assert embed is not None
    first, second = (embed.description or "").splitlines()
    assert "**ban**" in first and f"<@{admin.bob.id}>" in first
    assert "**paused**" in second and f"<@{admin.mod.id}>" in second


# -- blocklist ----------------------------------------------------------------------------------


async def test_blocklist_add_list_and_remove(admin: Admin) -> None:
    text, embed = await admin.run("admin blocklist add", pattern="Gore")
    assert text.startswith("Rule #") and "`gore`" in text
    text, _ = await admin.run("admin blocklist add", pattern=r"blood\w*", kind="regex")
    assert r"`blood\w*`" in text

    text, embed = await admin.run("admin blocklist list")
    assert text == "The blocklist has 2 rule(s)."
    assert embed is not None
    word_rule, regex_rule = await admin.store.block_rules(admin.guild_id)
    assert (embed.description or "").splitlines() == [
        f"**#{word_rule.id}** word: `gore`",
        f"**#{regex_rule.id}** regex: `blood\\w*`",
    ]
    with pytest.raises(RequestRefused) as refused:
        await check_gates(
            admin.store, admin.guild_id, admin.bob.id, admin.channel.id, prompt="Bloodbath at noon"
        )
    assert f"rule #{regex_rule.id}" in refused.value.message
    _, shown = await admin.run("admin show")
    assert fields(shown)["Blocklist"] == "2 rule(s)"

    text, embed = await admin.run("admin blocklist remove", rule=word_rule.id)
    assert text == f"Removed rule #{word_rule.id} (word `gore`)."
    assert embed is not None and "gore" not in (embed.description or "")
    text, _ = await admin.run("admin blocklist remove", rule=word_rule.id)
    assert text.startswith(f"There is no rule #{word_rule.id}")


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(?=.*a)b", "look-around like (?=…)"),
        (r"(x)\1", r"back-references like \1"),
        ("(a", "not a valid regular expression"),
        ("a*", "matches an empty text"),
    ],
)
async def test_a_dangerous_or_broken_regex_is_refused_with_the_reason(
    admin: Admin, pattern: str, reason: str
) -> None:
    text, embed = await admin.run("admin blocklist add", pattern=pattern, kind="regex")
    assert text.startswith("That regex was not added: ")
    assert reason in text
    assert embed is None
    assert await admin.store.block_rules(admin.guild_id) == []


# -- who may use it -----------------------------------------------------------------------------


def every_command(admin: Admin) -> dict[str, dict[str, Any]]:
    """Valid options for every admin command: with them, a moderator's call changes things."""
    return {
        "admin show": {},
        "admin budget": {"pool": 3},
        "admin role-limit": {"role": role(snowflake()), "credits": 50},
        "admin grant": {"member": user(admin.bob), "credits": 5},
        "admin reset": {},
        "admin approvals": {"enabled": True},
        "admin pause": {},
        "admin resume": {},
        "admin ban": {"member": user(admin.bob)},
        "admin unban": {"member": user(admin.bob)},
        "admin bans": {},
        "admin forget": {"member": user(admin.bob), "confirm": True},
        "admin audit": {},
        "admin blocklist add": {"pattern": "gore"},
        "admin blocklist remove": {"rule": 1},
        "admin blocklist list": {},
        "admin channels allow": {"channel": text_channel()},
        "admin channels disallow": {"channel": text_channel()},
        "admin channels clear": {},
        "admin channels list": {},
        "admin modlog set": {"channel": text_channel()},
        "admin modlog clear": {},
    }


async def test_no_admin_command_works_without_manage_server(admin: Admin) -> None:
    calls = every_command(admin)
    group = admin_group(admin.bot)
    leaves = {
        c.qualified_name for c in group.walk_commands() if isinstance(c, app_commands.Command)
    }
    assert set(calls) == leaves  # a new command must join this test
    await add_job(admin.store, admin.guild_id, admin.bob.id, prompt="keep me")

    # The server changed the default permissions, so Discord let Bob run every one of them.
    for name, options in calls.items():
        text, embed = await admin.run(name, by=admin.bob, **options)
        assert (text, embed) == (MANAGE_SERVER, None), name

    assert await admin.store.audit_log(admin.guild_id) == []
    settings = await admin.settings()
    assert settings.customised == frozenset() and not settings.paused and not settings.approvals
    assert settings.role_limits == {} and settings.allowed_channels == frozenset()
    assert await admin.store.block_rules(admin.guild_id) == []
    assert len(await admin.store.recent_jobs(admin.guild_id, admin.bob.id)) == 1


async def test_the_same_calls_work_for_a_moderator(admin: Admin) -> None:
    for name, options in every_command(admin).items():
        text, _ = await admin.run(name, **options)
        assert text != MANAGE_SERVER and "Something went wrong" not in text, name
    actions = {e.action for e in await admin.store.audit_log(admin.guild_id, limit=50)}
    assert {"budget", "role_limit", "grant", "ban", "unban", "forget", "block_add"} <= actions


async def test_administrator_counts_as_manage_server(admin: Admin) -> None:
    interaction = make_interaction(admin.bot, admin.bob, admin.channel)
    interaction.permissions = discord.Permissions(administrator=True)
    await invoke(admin.bot.tree, interaction, "admin pause")
    text, _ = only_answer(interaction)
    assert text.startswith("⏸️ Paused")


async def test_outside_a_server_it_is_refused(admin: Admin) -> None:
    interaction = make_interaction(admin.bot, admin.mod, admin.channel, in_guild=False)
    await invoke(admin.bot.tree, interaction, "admin show")
    assert only_answer(interaction) == ("This command only works in a server.", None)
