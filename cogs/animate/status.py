"""The status message of a job: one embed, edited as the job moves, with Cancel while it can."""

from __future__ import annotations

from datetime import datetime

import discord

from bot.models import JobRecord, JobState
from cogs._render import STATES, clip, settings_line, shown_text, ts, without_controls
from cogs.animate.buttons import cancel_view

CANCELLABLE = (JobState.QUEUED, JobState.ACCEPTED, JobState.PENDING_APPROVAL)


def status_content(job: JobRecord) -> str:
    return f"Video for <@{job.member_id}>"


def status_embed(
    job: JobRecord,
    *,
    expected_finish: datetime | None,
    result_jump_url: str | None = None,
    slot_position: int | None = None,
) -> discord.Embed:
    """The public status of a job: cost and settings, never the requester's credits left
    (only moderators may see another member's credits; the requester reads theirs in the
    private acknowledgement)."""
    look = STATES[job.state]
    title = look.headline
    if job.state is JobState.ACCEPTED and slot_position is not None:
        title = "🕒 Waiting for a free slot"
    embed = discord.Embed(
        title=title, colour=look.colour, description=f">>> {shown_text(job.prompt, 1200)}"
    )
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
        embed.add_field(name="What happened", value=shown_text(job.error, 1024), inline=False)
    if job.last_frame_url and job.resolution == "1080p" and not job.state.is_terminal:
        embed.add_field(name="Note", value="The last frame has no effect at 1080p.", inline=False)
    embed.set_thumbnail(url=job.image_url)
    footer = f"Job {job.id}"
    if job.request_id:
        footer += f" · request {job.request_id}"
    embed.set_footer(text=clip(without_controls(footer), 2048))
    return embed


def render_status(
    job: JobRecord, embed: discord.Embed
) -> tuple[str, discord.Embed, discord.ui.View | None]:
    """The status message's parts; the Cancel button only while the job can be cancelled."""
    view = cancel_view(job.id) if job.state in CANCELLABLE else None
    return status_content(job), embed, view
