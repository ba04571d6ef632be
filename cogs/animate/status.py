"""The status message of a job: one embed, edited as the job moves, with Cancel while it can."""

from __future__ import annotations

from datetime import datetime

import discord

from bot.i18n import ENGLISH, Words
from bot.models import JobRecord, JobState
from cogs._render import STATES, clip, settings_line, shown_text, ts, without_controls
from cogs.animate.buttons import cancel_view

CANCELLABLE = (JobState.QUEUED, JobState.ACCEPTED, JobState.PENDING_APPROVAL)


def status_content(job: JobRecord, t: Words = ENGLISH) -> str:
    return t("Video for {member}", member=f"<@{job.member_id}>")


def status_embed(
    job: JobRecord,
    *,
    expected_finish: datetime | None,
    result_jump_url: str | None = None,
    slot_position: int | None = None,
    t: Words = ENGLISH,
) -> discord.Embed:
    """The public status of a job (in the server's language ``t``): cost and settings, never
    the requester's credits left (only moderators may see another member's credits; the
    requester reads theirs in the private acknowledgement)."""
    look = STATES[job.state]
    title = look.headline_in(t)
    if job.state is JobState.ACCEPTED and slot_position is not None:
        title = "🕒 " + t("Waiting for a free slot")
    embed = discord.Embed(
        title=title, colour=look.colour, description=f">>> {shown_text(job.prompt, 1200)}"
    )
    embed.add_field(name=t("Requested by"), value=f"<@{job.member_id}>", inline=True)
    embed.add_field(name=t("Settings"), value=settings_line(job, t), inline=True)
    if job.state is JobState.QUEUED:
        where = (
            t("#{position} in line", position=job.queue_position)
            if job.queue_position
            else t("in line")
        )
        embed.add_field(name=t("Queue"), value=where, inline=True)
    elif job.state is JobState.ACCEPTED and slot_position is not None:
        embed.add_field(
            name=t("Queue"),
            value=t("#{position} in line here", position=slot_position),
            inline=True,
        )
    elif job.state is JobState.PENDING_APPROVAL:
        embed.add_field(
            name=t("Queue"),
            value=t("Over your cap, so a moderator decides; the credits come from the server pool"),
            inline=False,
        )
    if job.state.is_terminal and job.finished_at is not None:
        took = int((job.finished_at - job.created_at).total_seconds())
        embed.add_field(
            name=t("Took"),
            value=t("{minutes} min {seconds} s", minutes=took // 60, seconds=took % 60),
            inline=True,
        )
    else:
        embed.add_field(name=t("Started"), value=ts(job.created_at), inline=True)
    if expected_finish is not None and not job.state.is_terminal:
        embed.add_field(name=t("Expected"), value=ts(expected_finish), inline=True)
    if job.state is JobState.DELIVERED and result_jump_url:
        embed.add_field(
            name=t("Video"),
            value=t("[Jump to the video]({url})", url=result_jump_url),
            inline=False,
        )
    if job.error and job.state is not JobState.DELIVERED:
        embed.add_field(
            name=t("What happened"), value=shown_text(t.stored(job.error), 1024), inline=False
        )
    if job.last_frame_url and job.resolution == "1080p" and not job.state.is_terminal:
        embed.add_field(
            name=t("Note"), value=t("The last frame has no effect at 1080p."), inline=False
        )
    embed.set_thumbnail(url=job.image_url)
    footer = t("Job {id}", id=job.id)
    if job.request_id:
        footer += t(" · request {request_id}", request_id=job.request_id)
    embed.set_footer(text=clip(without_controls(footer), 2048))
    return embed


def render_status(
    job: JobRecord, embed: discord.Embed, t: Words = ENGLISH
) -> tuple[str, discord.Embed, discord.ui.View | None]:
    """The status message's parts; the Cancel button only while the job can be cancelled."""
    view = cancel_view(job.id, t) if job.state in CANCELLABLE else None
    return status_content(job, t), embed, view
