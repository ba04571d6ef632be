"""How a job looks in a channel: the status embed, the quota line, refusal texts."""

from __future__ import annotations

from datetime import datetime

import discord

from bot.models import JobRecord, JobState, QuotaRefusal, Usage
from bot.quota import Period

PERIOD_WORD = {Period.DAY: "today", Period.WEEK: "this week", Period.MONTH: "this month"}

_LOOK: dict[JobState, tuple[str, discord.Colour]] = {
    JobState.ACCEPTED: ("⏳ Sending to the video service", discord.Colour.light_grey()),
    JobState.SUBMITTING: ("⏳ Sending to the video service", discord.Colour.light_grey()),
    JobState.QUEUED: ("🕒 Waiting in the queue", discord.Colour.blurple()),
    JobState.RUNNING: ("🎬 Generating the video", discord.Colour.gold()),
    JobState.DELIVERING: ("📦 Posting the video", discord.Colour.gold()),
    JobState.DELIVERED: ("✅ Video ready", discord.Colour.green()),
    JobState.FAILED: ("❌ Failed — no credits used", discord.Colour.red()),
    JobState.CANCELLED: ("🚫 Cancelled — no credits used", discord.Colour.dark_grey()),
    JobState.TIMED_OUT: ("⌛ Timed out — no credits used", discord.Colour.red()),
    JobState.UNKNOWN_SUBMISSION: ("❔ Not confirmed by the video service", discord.Colour.orange()),
    JobState.PENDING_APPROVAL: ("🛡️ Waiting for a moderator", discord.Colour.orange()),
}


def ts(moment: datetime, style: str = "R") -> str:
    """A Discord timestamp: it renders in each reader's time zone and ticks by itself."""
    return f"<t:{int(moment.timestamp())}:{style}>"


def credits(n: int) -> str:
    return f"{n} credit" if n == 1 else f"{n} credits"


def settings_line(job: JobRecord) -> str:
    last = " · last frame" if job.last_frame_url else ""
    return f"{job.resolution} · {job.duration} s{last} · {credits(job.credits)}"


def quota_line(usage: Usage) -> str:
    word = PERIOD_WORD[usage.period]
    return (
        f"{usage.member_left} of {credits(usage.member_limit)} left {word} · "
        f"server pool {usage.server_left}/{usage.server_limit} · resets {ts(usage.resets_at)}"
    )


def message_link(guild_id: int, channel_id: int, message_id: int) -> str:
    """A link that opens a server message in Discord.

    Built from ids: discord.py's ``jump_url`` says ``@me`` (a DM) for messages sent through
    a partial channel, which is how the bot posts.
    """
    return f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def status_embed(
    job: JobRecord,
    *,
    usage: Usage | None,
    expected_finish: datetime | None,
    result_jump_url: str | None = None,
    slot_position: int | None = None,
) -> discord.Embed:
    title, colour = _LOOK[job.state]
    if job.state is JobState.ACCEPTED and slot_position is not None:
        title = "🕒 Waiting for a free slot"
    embed = discord.Embed(title=title, colour=colour, description=f">>> {clip(job.prompt, 600)}")
    embed.add_field(name="Requested by", value=f"<@{job.member_id}>", inline=True)
    embed.add_field(name="Settings", value=settings_line(job), inline=True)
    if job.state is JobState.QUEUED:
        where = f"#{job.queue_position} in line" if job.queue_position else "in line"
        embed.add_field(name="Queue", value=where, inline=True)
    elif job.state is JobState.ACCEPTED and slot_position is not None:
        embed.add_field(name="Queue", value=f"#{slot_position} in line here", inline=True)
    elif job.state is JobState.PENDING_APPROVAL:
        embed.add_field(
            name="Queue",
            value="Over your cap, so a moderator decides; the credits come from the server pool",
            inline=False,
        )
    if job.state.is_terminal and job.finished_at is not None:
        took = int((job.finished_at - job.created_at).total_seconds())
        embed.add_field(name="Took", value=f"{took // 60} min {took % 60} s", inline=True)
    else:
        embed.add_field(name="Started", value=ts(job.created_at), inline=True)
    if expected_finish is not None and not job.state.is_terminal:
        embed.add_field(name="Expected", value=ts(expected_finish), inline=True)
    if job.state is JobState.DELIVERED and result_jump_url:
        embed.add_field(name="Video", value=f"[Jump to the video]({result_jump_url})", inline=False)
    if job.error and job.state is not JobState.DELIVERED:
        embed.add_field(name="What happened", value=clip(job.error, 1024), inline=False)
    if job.last_frame_url and job.resolution == "1080p" and not job.state.is_terminal:
        embed.add_field(name="Note", value="The last frame has no effect at 1080p.", inline=False)
    if usage is not None:
        embed.add_field(name="Your quota", value=quota_line(usage), inline=False)
    embed.set_thumbnail(url=job.image_url)
    footer = f"Job {job.id}"
    if job.request_id:
        footer += f" · request {job.request_id}"
    embed.set_footer(text=clip(footer, 2048))
    return embed


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
