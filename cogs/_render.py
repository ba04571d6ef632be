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

from bot.models import JobRecord, JobState, QuotaRefusal, Usage
from bot.quota import Period

PERIOD_WORD = {Period.DAY: "today", Period.WEEK: "this week", Period.MONTH: "this month"}


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
        return f"{self.emoji} {self.title}"

    @property
    def label(self) -> str:
        return f"{self.emoji} {self.short}"


STATES: dict[JobState, Look] = {
    JobState.ACCEPTED: Look(
        "⏳", "Sending to the video service", "starting", discord.Colour.light_grey()
    ),
    JobState.SUBMITTING: Look(
        "⏳", "Sending to the video service", "starting", discord.Colour.light_grey()
    ),
    JobState.QUEUED: Look("🕒", "Waiting in the queue", "queued", discord.Colour.blurple()),
    JobState.RUNNING: Look("🎬", "Generating the video", "generating", discord.Colour.gold()),
    JobState.DELIVERING: Look("📦", "Posting the video", "posting", discord.Colour.gold()),
    JobState.DELIVERED: Look("✅", "Video ready", "delivered", discord.Colour.green()),
    JobState.FAILED: Look("❌", "Failed — no credits used", "failed", discord.Colour.red()),
    JobState.CANCELLED: Look(
        "🚫", "Cancelled — no credits used", "cancelled", discord.Colour.dark_grey()
    ),
    JobState.TIMED_OUT: Look(
        "⌛", "Timed out — no credits used", "timed out", discord.Colour.red()
    ),
    JobState.UNKNOWN_SUBMISSION: Look(
        "❔", "Not confirmed by the video service", "unconfirmed", discord.Colour.orange()
    ),
    JobState.PENDING_APPROVAL: Look(
        "🛡️", "Waiting for a moderator", "waiting for a moderator", discord.Colour.orange()
    ),
}


def ts(moment: datetime, style: str = "R") -> str:
    """A Discord timestamp: it renders in each reader's time zone and ticks by itself."""
    return f"<t:{int(moment.timestamp())}:{style}>"


def credits(n: int) -> str:
    return f"{n} credit" if n == 1 else f"{n} credits"


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


def settings_line(job: JobRecord) -> str:
    last = " · last frame" if job.last_frame_url else ""
    return f"{job.resolution} · {job.duration} s{last} · {credits(job.credits)}"


def quota_line(usage: Usage) -> str:
    word = PERIOD_WORD[usage.period]
    return (
        f"{usage.member_left} of {credits(usage.member_limit)} left {word} · "
        f"server pool {usage.server_left}/{usage.server_limit} · resets {ts(usage.resets_at)}"
    )


def refusal_message(refusal: QuotaRefusal) -> str:
    word = PERIOD_WORD[refusal.period]
    resets = f"{ts(refusal.resets_at)} ({ts(refusal.resets_at, 'f')})"
    if refusal.reason == "member_credits":
        left = max(0, refusal.member_limit - refusal.member_used)
        return (
            f"Not enough credits: this video costs {credits(refusal.cost)} and you have "
            f"{credits(left)} left of {refusal.member_limit} {word}. Your credits reset {resets}. "
            "Nothing was charged."
        )
    if refusal.reason == "server_credits":
        left = max(0, refusal.server_limit - refusal.server_used)
        return (
            f"The server's shared pool is too low: this video costs {credits(refusal.cost)} and "
            f"the pool has {credits(left)} left of {refusal.server_limit} {word}. "
            f"It resets {resets}. Nothing was charged."
        )
    if refusal.reason == "member_concurrent":
        return (
            f"You already have {refusal.active_member} video(s) in progress, the most allowed at "
            "once. Wait for one to finish, then try again. Nothing was charged."
        )
    return (
        f"This server already has {refusal.active_server} videos in progress, the most allowed at "
        "once. Try again in a few minutes. Nothing was charged."
    )
