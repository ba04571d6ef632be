"""What /admin shows: the overview, lists, and the audit trail, as embeds and lines."""

from __future__ import annotations

from collections.abc import Iterable

import discord

from bot.i18n import ENGLISH, N_, Words, _n
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


def joined(items: Iterable[str], *, empty: str, limit: int = 1024, t: Words = ENGLISH) -> str:
    """Items separated by commas, clipped to ``limit`` characters with a count of the rest."""
    items = list(items)
    if not items:
        return empty
    shown: list[str] = []
    for i, item in enumerate(items):
        rest = len(items) - i
        candidate = ", ".join([*shown, item])
        tail = " … " + t("and {count} more", count=rest - 1) if rest > 1 else ""
        if len(candidate) + len(tail) > limit:
            return ", ".join(shown) + " … " + t("and {count} more", count=rest)
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


def _default_mark(settings: GuildSettings, name: str, t: Words = ENGLISH) -> str:
    return "" if name in settings.customised else " *" + t("(default)") + "*"


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


def spend_line(
    pool: PoolUsage, per_credit: tuple[float, str, int] | None, t: Words = ENGLISH
) -> str | None:
    """What the period's videos really cost at the provider, and a credit's worth at list
    price; None when the provider reported neither."""
    parts = []
    if pool.priced_jobs:
        parts.append(
            t(
                _n(
                    "{amount} spent on {count} video",
                    "{amount} spent on {count} videos",
                    pool.priced_jobs,
                    amount=usd(pool.spent_usd),
                )
            )
        )
    if per_credit is not None:
        amount, resolution, seconds = per_credit
        parts.append(
            "≈ "
            + t(
                "{amount} per credit at list price ({resolution} {seconds} s)",
                amount=usd(amount),
                resolution=resolution,
                seconds=seconds,
            )
        )
    return " · ".join(parts) or None


def overview_embed(
    settings: GuildSettings,
    pool: PoolUsage,
    *,
    banned: int,
    rules: int,
    per_credit: tuple[float, str, int] | None = None,
    t: Words = ENGLISH,
) -> discord.Embed:
    """Everything a moderator controls, where the pool stands this period, and what it cost
    at the provider (``per_credit``: a credit's worth at list price, when known)."""
    paused = settings.paused
    embed = discord.Embed(
        title="⏸️ " + t("Video generation is paused") if paused else t("Video bot settings"),
        colour=discord.Colour.red() if paused else discord.Colour.blurple(),
    )
    per = t(PER_PERIOD[settings.period.value])
    embed.add_field(
        name=t("Period"),
        value=t(PERIOD_NAME[settings.period.value])
        + " (UTC)"
        + _default_mark(settings, "period", t),
        inline=True,
    )
    embed.add_field(
        name=t("Server pool"),
        value=f"{n_credits(settings.server_credits, t)} {per}"
        + _default_mark(settings, "server_credits", t),
        inline=True,
    )
    embed.add_field(
        name=t("Member cap"),
        value=f"{n_credits(settings.member_credits, t)} {per}"
        + _default_mark(settings, "member_credits", t),
        inline=True,
    )
    held = t(" (+{count} held)", count=pool.held) if pool.held else ""
    waiting = (
        "\n" + t("{count} request(s) waiting for a moderator", count=pool.awaiting_approval)
        if pool.awaiting_approval
        else ""
    )
    embed.add_field(
        name=t("Pool usage ({period})", period=pool.period_key),
        value=t(
            "{used}{held} used of {limit} · {left} left · resets {resets}\n"
            "{active} job(s) in progress{waiting}",
            used=n_credits(pool.used, t),
            held=held,
            limit=pool.limit,
            left=n_credits(pool.left, t),
            resets=f"{ts(pool.resets_at)} ({ts(pool.resets_at, 'f')})",
            active=pool.active_jobs,
            waiting=waiting,
        ),
        inline=False,
    )
    spent = spend_line(pool, per_credit, t)
    if spent is not None:
        embed.add_field(name=t("Provider cost (USD)"), value=spent, inline=False)
    embed.add_field(
        name=t("Jobs at once"),
        value=t(
            "per member {member}{member_default} · per server {server}{server_default}",
            member=settings.member_concurrent,
            member_default=_default_mark(settings, "member_concurrent", t),
            server=settings.server_concurrent,
            server_default=_default_mark(settings, "server_concurrent", t),
        ),
        inline=False,
    )
    embed.add_field(
        name=t("Role limits"),
        value=joined(
            (
                f"<@&{role}>: {n_credits(n, t)}"
                for role, n in sorted(settings.role_limits.items(), key=lambda kv: -kv[1])
            ),
            empty=t("none"),
            t=t,
        ),
        inline=False,
    )
    embed.add_field(
        name=t("Approvals"), value=t("on") if settings.approvals else t("off"), inline=True
    )
    embed.add_field(name=t("Paused"), value=t("yes") if paused else t("no"), inline=True)
    embed.add_field(
        name=t("Mod-log"),
        value=f"<#{settings.modlog_channel_id}>" if settings.modlog_channel_id else t("not set"),
        inline=True,
    )
    embed.add_field(
        name=t("Allowed channels"),
        value=joined(
            (f"<#{c}>" for c in sorted(settings.allowed_channels)),
            empty=t("every channel"),
            t=t,
        ),
        inline=False,
    )
    embed.add_field(name=t("Banned members"), value=str(banned), inline=True)
    embed.add_field(name=t("Blocklist"), value=t("{count} rule(s)", count=rules), inline=True)
    return embed


PERIOD_NAME = {"day": N_("day"), "week": N_("week"), "month": N_("month")}
PER_PERIOD = {"day": N_("per day"), "week": N_("per week"), "month": N_("per month")}


def rule_line(rule: BlockRule, t: Words = ENGLISH) -> str:
    kind = t.lookup("choice", rule.kind) or rule.kind
    return f"**#{rule.id}** {kind}: {code(rule.pattern)}"


def blocklist_embed(rules: list[BlockRule], page: int, t: Words = ENGLISH) -> discord.Embed:
    """The rules, numbered as members see them in a refusal ("rule #3"), one page of them."""
    embed = discord.Embed(title=t("Prompt blocklist"), colour=discord.Colour.dark_red())
    if not rules:
        embed.description = t(
            "No rules: every prompt is allowed. Add one with `/admin blocklist add`."
        )
        return embed
    found = pages(rule_line(r, t) for r in rules)
    page = min(max(page, 1), len(found))
    embed.description = found[page - 1]
    words = sum(r.kind == "word" for r in rules)
    footer = t(
        "{count} rule(s): {words} word(s), {regexes} regex(es)",
        count=len(rules),
        words=words,
        regexes=len(rules) - words,
    )
    if len(found) > 1:
        footer += t(" · page {page} of {pages}", page=page, pages=len(found))
    embed.set_footer(text=footer)
    return embed


def channels_embed(settings: GuildSettings, t: Words = ENGLISH) -> discord.Embed:
    embed = discord.Embed(title=t("Allowed channels"), colour=discord.Colour.blurple())
    if settings.allowed_channels:
        found = pages(f"<#{c}>" for c in sorted(settings.allowed_channels))
        embed.description = found[0]
        embed.set_footer(
            text=t("{count} channel(s); threads follow them", count=len(settings.allowed_channels))
        )
    else:
        embed.description = t("Every channel: `/animate` works anywhere the bot can post.")
    return embed


def bans_embed(bans: list[Ban], t: Words = ENGLISH) -> discord.Embed:
    embed = discord.Embed(title=t("Members banned from the bot"), colour=discord.Colour.dark_red())
    lines = [
        t(
            "{member} · {when} by {moderator}",
            member=user_mention(b.member_id),
            when=ts(b.banned_at),
            moderator=user_mention(b.banned_by),
        )
        + (f" · {clip(b.reason, 100)}" if b.reason else "")
        for b in bans
    ]
    found = pages(lines)
    embed.description = found[0] if found else t("Nobody.")
    if len(found) > 1:
        embed.set_footer(text=t("{count} bans; showing the oldest", count=len(bans)))
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
    """Settings that are allowed but probably not what the moderator meant (msgids)."""
    notes = []
    if settings.server_credits == 0:
        notes.append(N_("With a pool of 0 nobody can make a video until it is raised."))
    elif settings.member_credits > settings.server_credits:
        notes.append(N_("The member cap is larger than the whole pool."))
    if settings.server_concurrent < settings.member_concurrent:
        notes.append(N_("The per-member job limit is above the server's, so the server's applies."))
    return notes


def member_state(member_id: int, usage: Usage, t: Words = ENGLISH) -> str:
    """One member's credits now, for the answer to a grant or a reset."""
    held = t(" (+{count} held)", count=usage.member_reserved) if usage.member_reserved else ""
    return t(
        "{member} now: {used}{held} used of {limit} · {left} left · resets {resets}",
        member=user_mention(member_id),
        used=n_credits(usage.member_used, t),
        held=held,
        limit=usage.member_limit,
        left=n_credits(usage.member_left, t),
        resets=ts(usage.resets_at),
    )
