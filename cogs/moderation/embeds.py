"""What /admin shows: the overview, lists, and the audit trail, as embeds and lines."""

from __future__ import annotations

from collections.abc import Iterable

import discord

from bot.models import AuditEntry, Ban, BlockRule, GuildSettings, PoolUsage, Usage
from cogs._render import clip, ts
from cogs._render import credits as n_credits

EMBED_TEXT = 4000
"""Room for a list in an embed description (Discord allows 4096)."""


def user_mention(user_id: int) -> str:
    return f"<@{user_id}>"


def code(text: str) -> str:
    """A moderator's pattern shown literally, whatever characters it holds."""
    if "`" not in text:
        return f"`{text}`"
    return discord.utils.escape_markdown(text)


def joined(items: Iterable[str], *, empty: str, limit: int = 1024) -> str:
    """Items separated by commas, clipped to ``limit`` characters with a count of the rest."""
    items = list(items)
    if not items:
        return empty
    shown: list[str] = []
    for i, item in enumerate(items):
        rest = len(items) - i
        candidate = ", ".join([*shown, item])
        tail = f" … and {rest - 1} more" if rest > 1 else ""
        if len(candidate) + len(tail) > limit:
            return ", ".join(shown) + f" … and {rest} more"
        shown.append(item)
    return ", ".join(shown)


def pages(lines: Iterable[str], size: int = EMBED_TEXT) -> list[str]:
    """Lines packed greedily into pages of at most ``size`` characters."""
    result: list[str] = []
    current: list[str] = []
    length = 0
    for line in lines:
        line = clip(line, size)
        if current and length + 1 + len(line) > size:
            result.append("\n".join(current))
            current, length = [], 0
        current.append(line)
        length += len(line) + (1 if length else 0)
    if current:
        result.append("\n".join(current))
    return result


def _default_mark(settings: GuildSettings, name: str) -> str:
    return "" if name in settings.customised else " *(default)*"


def usd(amount: float) -> str:
    """Dollars as a moderator reads them: cents from a dollar up, else up to four places."""
    if amount >= 1:
        return f"${amount:,.2f}"
    if amount == 0:
        return "$0"
    if amount < 0.0001:
        return "<$0.0001"
    shown = f"{amount:.4f}"
    while shown.endswith("0") and len(shown.rsplit(".", 1)[1]) > 2:
        shown = shown[:-1]
    return f"${shown}"


def spend_line(pool: PoolUsage, per_credit: tuple[float, str, int] | None) -> str | None:
    """What the period's videos really cost at the provider, and a credit's worth at list
    price; None when the provider reported neither."""
    parts = []
    if pool.priced_jobs:
        videos = "video" if pool.priced_jobs == 1 else "videos"
        parts.append(f"{usd(pool.spent_usd)} spent on {pool.priced_jobs} {videos}")
    if per_credit is not None:
        amount, resolution, seconds = per_credit
        parts.append(f"≈ {usd(amount)} per credit at list price ({resolution} {seconds} s)")
    return " · ".join(parts) or None


def overview_embed(
    settings: GuildSettings,
    pool: PoolUsage,
    *,
    banned: int,
    rules: int,
    per_credit: tuple[float, str, int] | None = None,
) -> discord.Embed:
    """Everything a moderator controls, where the pool stands this period, and what it cost
    at the provider (``per_credit``: a credit's worth at list price, when known)."""
    paused = settings.paused
    embed = discord.Embed(
        title="⏸️ Video generation is paused" if paused else "Video bot settings",
        colour=discord.Colour.red() if paused else discord.Colour.blurple(),
    )
    per = f"per {settings.period.value}"
    embed.add_field(
        name="Period",
        value=f"{settings.period.value} (UTC){_default_mark(settings, 'period')}",
        inline=True,
    )
    embed.add_field(
        name="Server pool",
        value=f"{n_credits(settings.server_credits)} {per}"
        + _default_mark(settings, "server_credits"),
        inline=True,
    )
    embed.add_field(
        name="Member cap",
        value=f"{n_credits(settings.member_credits)} {per}"
        + _default_mark(settings, "member_credits"),
        inline=True,
    )
    held = f" (+{pool.held} held)" if pool.held else ""
    waiting = (
        f"\n{pool.awaiting_approval} request(s) waiting for a moderator"
        if pool.awaiting_approval
        else ""
    )
    embed.add_field(
        name=f"Pool usage ({pool.period_key})",
        value=(
            f"{n_credits(pool.used)}{held} used of {pool.limit} · {n_credits(pool.left)} left · "
            f"resets {ts(pool.resets_at)} ({ts(pool.resets_at, 'f')})\n"
            f"{pool.active_jobs} job(s) in progress{waiting}"
        ),
        inline=False,
    )
    spent = spend_line(pool, per_credit)
    if spent is not None:
        embed.add_field(name="Provider cost (USD)", value=spent, inline=False)
    embed.add_field(
        name="Jobs at once",
        value=(
            f"per member {settings.member_concurrent}"
            f"{_default_mark(settings, 'member_concurrent')} · per server "
            f"{settings.server_concurrent}{_default_mark(settings, 'server_concurrent')}"
        ),
        inline=False,
    )
    embed.add_field(
        name="Role limits",
        value=joined(
            (
                f"<@&{role}>: {n_credits(n)}"
                for role, n in sorted(settings.role_limits.items(), key=lambda kv: -kv[1])
            ),
            empty="none",
        ),
        inline=False,
    )
    embed.add_field(name="Approvals", value="on" if settings.approvals else "off", inline=True)
    embed.add_field(name="Paused", value="yes" if paused else "no", inline=True)
    embed.add_field(
        name="Mod-log",
        value=f"<#{settings.modlog_channel_id}>" if settings.modlog_channel_id else "not set",
        inline=True,
    )
    embed.add_field(
        name="Allowed channels",
        value=joined((f"<#{c}>" for c in sorted(settings.allowed_channels)), empty="every channel"),
        inline=False,
    )
    embed.add_field(name="Banned members", value=str(banned), inline=True)
    embed.add_field(name="Blocklist", value=f"{rules} rule(s)", inline=True)
    return embed


def rule_line(rule: BlockRule) -> str:
    return f"**#{rule.id}** {rule.kind}: {code(rule.pattern)}"


def blocklist_embed(rules: list[BlockRule], page: int) -> discord.Embed:
    """The rules, numbered as members see them in a refusal ("rule #3"), one page of them."""
    embed = discord.Embed(title="Prompt blocklist", colour=discord.Colour.dark_red())
    if not rules:
        embed.description = (
            "No rules: every prompt is allowed. Add one with `/admin blocklist add`."
        )
        return embed
    found = pages(rule_line(r) for r in rules)
    page = min(max(page, 1), len(found))
    embed.description = found[page - 1]
    words = sum(r.kind == "word" for r in rules)
    footer = f"{len(rules)} rule(s): {words} word(s), {len(rules) - words} regex(es)"
    if len(found) > 1:
        footer += f" · page {page} of {len(found)}"
    embed.set_footer(text=footer)
    return embed


def channels_embed(settings: GuildSettings) -> discord.Embed:
    embed = discord.Embed(title="Allowed channels", colour=discord.Colour.blurple())
    if settings.allowed_channels:
        found = pages(f"<#{c}>" for c in sorted(settings.allowed_channels))
        embed.description = found[0]
        embed.set_footer(text=f"{len(settings.allowed_channels)} channel(s); threads follow them")
    else:
        embed.description = "Every channel: `/animate` works anywhere the bot can post."
    return embed


def bans_embed(bans: list[Ban]) -> discord.Embed:
    embed = discord.Embed(title="Members banned from the bot", colour=discord.Colour.dark_red())
    lines = [
        f"{user_mention(b.member_id)} · {ts(b.banned_at)} by {user_mention(b.banned_by)}"
        + (f" · {clip(b.reason, 100)}" if b.reason else "")
        for b in bans
    ]
    found = pages(lines)
    embed.description = found[0] if found else "Nobody."
    if len(found) > 1:
        embed.set_footer(text=f"{len(bans)} bans; showing the oldest")
    return embed


_TARGETS = {"role_limit": "<@&{}>", "channel_allow": "<#{}>", "channel_disallow": "<#{}>"}


def audit_line(entry: AuditEntry) -> str:
    target = ""
    if entry.target_id is not None:
        target = " " + _TARGETS.get(entry.action, "<@{}>").format(entry.target_id)
    detail = f" · {clip(entry.detail, 200)}" if entry.detail else ""
    return (
        f"{ts(entry.created_at)} {user_mention(entry.actor_id)} **{entry.action}**{target}{detail}"
    )


def budget_notes(settings: GuildSettings) -> list[str]:
    """Settings that are allowed but probably not what the moderator meant."""
    notes = []
    if settings.server_credits == 0:
        notes.append("With a pool of 0 nobody can make a video until it is raised.")
    elif settings.member_credits > settings.server_credits:
        notes.append("The member cap is larger than the whole pool.")
    if settings.server_concurrent < settings.member_concurrent:
        notes.append("The per-member job limit is above the server's, so the server's applies.")
    return notes


def member_state(member_id: int, usage: Usage) -> str:
    """One member's credits now, for the answer to a grant or a reset."""
    held = f" (+{usage.member_reserved} held)" if usage.member_reserved else ""
    return (
        f"{user_mention(member_id)} now: {n_credits(usage.member_used)}{held} used of "
        f"{usage.member_limit} · {n_credits(usage.member_left)} left · resets "
        f"{ts(usage.resets_at)}"
    )
