"""The moderators' desk: the mod-log channel, with one compact entry per settled job, approval
requests with Approve / Deny, and service alerts. It is the Discord side's `ModeratorDesk`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord

from bot.jobs.breaker import Trip, Trouble
from bot.models import ApprovalRequest, JobRecord, JobState
from cogs._render import STATES, clip, credits, message_link, shown_text, without_controls
from cogs.moderation.buttons import approval_view

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)


def shown_prompt(job: JobRecord) -> str:
    return shown_text(job.prompt, 1800)


def job_entry(job: JobRecord) -> discord.Embed:
    """Who, what, settings, credits, outcome: one glance per job."""
    look = STATES[job.state]
    charged = job.credits if job.state is JobState.DELIVERED else 0
    embed = discord.Embed(
        title=f"Job {job.id} · {look.short}",
        colour=look.colour,
        description=f"<@{job.member_id}> in <#{job.channel_id}>\n>>> {shown_prompt(job)}",
    )
    embed.add_field(
        name="Settings",
        value=f"{job.resolution} · {job.duration} s{' · last frame' if job.last_frame_url else ''}",
    )
    embed.add_field(name="Credits", value=credits(charged))
    if job.result_message_id:
        link = message_link(job.guild_id, job.channel_id, job.result_message_id)
        embed.add_field(name="Video", value=f"[open]({link})")
    if job.error and job.state is not JobState.DELIVERED:
        embed.add_field(name="Why", value=shown_text(job.error, 1024), inline=False)
    embed.set_thumbnail(url=job.image_url)
    if job.request_id:
        embed.set_footer(text=clip(without_controls(f"request {job.request_id}"), 2048))
    return embed


def approval_entry(job: JobRecord, *, reason: str) -> discord.Embed:
    embed = discord.Embed(
        title=f"Approval needed · job {job.id}",
        colour=discord.Colour.orange(),
        description=f"<@{job.member_id}> in <#{job.channel_id}>\n>>> {shown_prompt(job)}",
    )
    embed.add_field(name="Settings", value=f"{job.resolution} · {job.duration} s")
    embed.add_field(name="Cost", value=f"{credits(job.credits)} from the server pool")
    embed.add_field(name="Why it is here", value=reason, inline=False)
    embed.set_thumbnail(url=job.image_url)
    return embed


class ModLogDesk:
    """Implements `ModeratorDesk`: posts to a server's mod-log channel, when it has one."""

    def __init__(self, bot: SeedanceBot) -> None:
        self.bot = bot

    async def channel_id(self, guild_id: int) -> int | None:
        return (await self.bot.guild_admin.settings(guild_id)).modlog_channel_id

    async def job_settled(self, job: JobRecord) -> None:
        channel_id = await self.channel_id(job.guild_id)
        if channel_id is None:
            return
        try:
            await self.bot.get_partial_messageable(channel_id).send(
                embed=job_entry(job), allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException as exc:
            log.warning("guild %d: mod-log entry for job %d failed: %s", job.guild_id, job.id, exc)

    async def approval_needed(self, job: JobRecord) -> int | None:
        """Post an over-cap request with Approve / Deny; None when there is nowhere to post."""
        channel_id = await self.channel_id(job.guild_id)
        if channel_id is None:
            return None
        try:
            message = await self.bot.get_partial_messageable(channel_id).send(
                embed=approval_entry(job, reason="Over the member's cap; the pool has credits."),
                view=approval_view(job.id),
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as exc:
            log.warning(
                "guild %d: could not post approval for job %d: %s", job.guild_id, job.id, exc
            )
            return None
        return message.id

    async def approval_ended(self, request: ApprovalRequest, text: str) -> None:
        """Mark a request's mod-log message with what became of it, without its buttons."""
        message_id = request.approval.message_id
        channel_id = await self.channel_id(request.job.guild_id)
        if message_id is None or channel_id is None:
            return
        message = self.bot.get_partial_messageable(channel_id).get_partial_message(message_id)
        try:
            await message.edit(
                content=text, view=None, allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException as exc:
            log.info("job %d: could not mark the approval message: %s", request.job.id, exc)

    async def provider_trouble(self, trip: Trip) -> None:
        text = (
            "⚠️ The video service refuses the bot's account (its key or its balance). New videos "
            "are paused until the operator fixes it; nothing is being charged."
            if trip.trouble is Trouble.ACCOUNT
            else "⚠️ The video service is failing repeatedly. New videos are paused until it "
            "answers again; nothing is being charged."
        )
        for guild in self.bot.guilds:
            channel_id = await self.channel_id(guild.id)
            if channel_id is None:
                continue
            try:
                await self.bot.get_partial_messageable(channel_id).send(
                    text, allowed_mentions=discord.AllowedMentions.none()
                )
            except discord.HTTPException as exc:
                log.warning("guild %d: could not post the service alert: %s", guild.id, exc)
