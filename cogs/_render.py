"""How the bot words and draws things everywhere: the one job-state table, credits, times, links.

Every face of a job (the status message, /jobs, the mod-log) reads its emoji, words and colour
from `STATES`, so a state is never called two different things.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

import discord

from bot.i18n import ENGLISH, N_, Text, Words, _, _n
from bot.models import JobRecord, JobState, QuotaRefusal, Usage
from bot.quota import Period

PERIOD_WORD = {
    Period.DAY: N_("today"),
    Period.WEEK: N_("this week"),
    Period.MONTH: N_("this month"),
}
"""The period a budget runs for, as said after "left" (a msgid: word it for the reader)."""


@dataclass(frozen=True)
class Look:
    """How one job state is shown."""

    emoji: str
    title: str
    """The status message's headline."""
    short: str
    """The state in a list (/jobs) or a log entry."""
    colour: discord.Colour

    @property
    def headline(self) -> str:
        return self.headline_in(ENGLISH)

    @property
    def label(self) -> str:
        return self.label_in(ENGLISH)

    def headline_in(self, t: Words) -> str:
        return f"{self.emoji} {t(self.title)}"

    def label_in(self, t: Words) -> str:
        return f"{self.emoji} {t(self.short)}"


STATES: dict[JobState, Look] = {
    JobState.ACCEPTED: Look(
        "⏳", N_("Sending to the video service"), N_("starting"), discord.Colour.light_grey()
    ),
    JobState.SUBMITTING: Look(
        "⏳", N_("Sending to the video service"), N_("starting"), discord.Colour.light_grey()
    ),
    JobState.QUEUED: Look("🕒", N_("Waiting in the queue"), N_("queued"), discord.Colour.blurple()),
    JobState.RUNNING: Look(
        "🎬", N_("Generating the video"), N_("generating"), discord.Colour.gold()
    ),
    JobState.DELIVERING: Look("📦", N_("Posting the video"), N_("posting"), discord.Colour.gold()),
    JobState.DELIVERED: Look("✅", N_("Video ready"), N_("delivered"), discord.Colour.green()),
    JobState.FAILED: Look("❌", N_("Failed — no credits used"), N_("failed"), discord.Colour.red()),
    JobState.CANCELLED: Look(
        "🚫", N_("Cancelled — no credits used"), N_("cancelled"), discord.Colour.dark_grey()
    ),
    JobState.TIMED_OUT: Look(
        "⌛", N_("Timed out — no credits used"), N_("timed out"), discord.Colour.red()
    ),
    JobState.UNKNOWN_SUBMISSION: Look(
        "❔",
        N_("Not confirmed by the video service"),
        N_("unconfirmed"),
        discord.Colour.orange(),
    ),
    JobState.PENDING_APPROVAL: Look(
        "🛡️",
        N_("Waiting for a moderator"),
        N_("waiting for a moderator"),
        discord.Colour.orange(),
    ),
}


def ts(moment: datetime, style: str = "R") -> str:
    """A Discord timestamp: it renders in each reader's time zone and ticks by itself."""
    return f"<t:{int(moment.timestamp())}:{style}>"


def credits(n: int, t: Words = ENGLISH) -> str:
    return t(_n("{count} credit", "{count} credits", n))


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
"""Characters that reorder the text around them: a prompt could make the bot's words lie."""

# Every character Discord's markdown gives a meaning to anywhere in a line; a backslash makes
# each one literal (the reader does not see the backslash).
_MARKUP = re.compile(r"([\\*_~|`>#\-\[\]()<])")
_LIST_NUMBER = re.compile(r"(?m)^(\s*\d+)\.")


def without_controls(text: str) -> str:
    """``text`` without bidi controls and other control characters (newlines and tabs stay)."""
    return "".join(
        ch
        for ch in text
        if ch not in BIDI_CONTROLS and (ch in "\n\t" or unicodedata.category(ch) != "Cc")
    )


def shown_text(text: str, limit: int) -> str:
    """Text a member wrote (a prompt), to show in a message or an embed: markdown, masked
    links, headings and mentions render as the characters typed; at most ``limit`` chars."""
    escaped = _MARKUP.sub(r"\\\1", without_controls(text))
    escaped = discord.utils.escape_mentions(_LIST_NUMBER.sub(r"\1\\.", escaped))
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    # An odd run of backslashes at the cut would escape the ellipsis and leave one dangling.
    if (len(cut) - len(cut.rstrip("\\"))) % 2:
        cut = cut[:-1]
    return cut + "…"


def shown_line(text: str, limit: int) -> str:
    """:func:`shown_text` on one line: a newline cannot break out of a quote or a list."""
    return shown_text(" ".join(text.split()), limit)


def message_link(guild_id: int, channel_id: int, message_id: int) -> str:
    """A link that opens a server message in Discord.

    Built from ids: discord.py's ``jump_url`` says ``@me`` (a DM) for messages sent through
    a partial channel, which is how the bot posts.
    """
    return f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}"


def requester_only(member_id: int) -> discord.AllowedMentions:
    """Ping the requester and nobody else, whatever the prompt contains."""
    return discord.AllowedMentions(
        everyone=False, roles=False, replied_user=False, users=[discord.Object(member_id)]
    )


def settings_line(job: JobRecord, t: Words = ENGLISH) -> str:
    last = t(" · last frame") if job.last_frame_url else ""
    return f"{job.resolution} · {job.duration} s{last} · {credits(job.credits, t)}"


def quota_line(usage: Usage, t: Words = ENGLISH) -> str:
    return t(
        "{left} of {limit} left {period} · server pool {pool_left}/{pool_limit} · resets {resets}",
        left=usage.member_left,
        limit=credits(usage.member_limit, t),
        period=_(PERIOD_WORD[usage.period]),
        pool_left=usage.server_left,
        pool_limit=usage.server_limit,
        resets=ts(usage.resets_at),
    )


def refusal_message(refusal: QuotaRefusal) -> Text:
    """Why a request does not fit the budgets, what is left and when it resets."""
    period = _(PERIOD_WORD[refusal.period])
    resets = f"{ts(refusal.resets_at)} ({ts(refusal.resets_at, 'f')})"
    if refusal.reason == "member_credits":
        left = max(0, refusal.member_limit - refusal.member_used)
        return _(
            "Not enough credits: this video costs {cost} and you have {left} left of {limit} "
            "{period}. Your credits reset {resets}. Nothing was charged.",
            cost=_n("{count} credit", "{count} credits", refusal.cost),
            left=_n("{count} credit", "{count} credits", left),
            limit=refusal.member_limit,
            period=period,
            resets=resets,
        )
    if refusal.reason == "server_credits":
        left = max(0, refusal.server_limit - refusal.server_used)
        return _(
            "The server's shared pool is too low: this video costs {cost} and the pool has "
            "{left} left of {limit} {period}. It resets {resets}. Nothing was charged.",
            cost=_n("{count} credit", "{count} credits", refusal.cost),
            left=_n("{count} credit", "{count} credits", left),
            limit=refusal.server_limit,
            period=period,
            resets=resets,
        )
    if refusal.reason == "member_concurrent":
        return _(
            "You already have {count} video(s) in progress, the most allowed at once. Wait for "
            "one to finish, then try again. Nothing was charged.",
            count=refusal.active_member,
        )
    return _(
        "This server already has {count} videos in progress, the most allowed at once. Try "
        "again in a few minutes. Nothing was charged.",
        count=refusal.active_server,
    )
