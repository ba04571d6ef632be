"""The moderators' desk: the mod-log channel, with one compact entry per settled job, approval
requests with Approve / Deny, and service alerts. It is the Discord side's `ModeratorDesk`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord

from bot.i18n import ENGLISH, N_, Text, Words
from bot.jobs.breaker import Trip, Trouble
from bot.models import ApprovalRequest, JobRecord, JobState
from cogs._i18n import guild_words
from cogs._render import STATES, clip, credits, message_link, shown_text, without_controls
from cogs.moderation.buttons import approval_view

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)


def shown_prompt(job: JobRecord) -> str:
    return shown_text(job.prompt, 1800)


def _who_where(job: JobRecord, t: Words) -> str:
    where = t("{member} in {channel}", member=f"<@{job.member_id}>", channel=f"<#{job.channel_id}>")
    return f"{where}\n>>> {shown_prompt(job)}"


def job_entry(job: JobRecord, t: Words = ENGLISH) -> discord.Embed:
    """Who, what, settings, credits, outcome: one glance per job (in the server's language)."""
    look = STATES[job.state]
    charged = job.credits if job.state is JobState.DELIVERED else 0
    embed = discord.Embed(
        title=t("Job {id} · {state}", id=job.id, state=t(look.short)),
        colour=look.colour,
        description=_who_where(job, t),
    )
    last = t(" · last frame") if job.last_frame_url else ""
    embed.add_field(name=t("Settings"), value=f"{job.resolution} · {job.duration} s{last}")
    embed.add_field(name=t("Credits"), value=credits(charged, t))
    if job.result_message_id:
        link = message_link(job.guild_id, job.channel_id, job.result_message_id)
        embed.add_field(name=t("Video"), value=t("[open]({link})", link=link))
    if job.error and job.state is not JobState.DELIVERED:
        embed.add_field(name=t("Why"), value=shown_text(t.stored(job.error), 1024), inline=False)
    embed.set_thumbnail(url=job.image_url)
    if job.request_id:
        footer = t("request {request_id}", request_id=job.request_id)
        embed.set_footer(text=clip(without_controls(footer), 2048))
    return embed


def approval_entry(job: JobRecord, *, reason: str | Text, t: Words = ENGLISH) -> discord.Embed:
    embed = discord.Embed(
        title=t("Approval needed · job {id}", id=job.id),
        colour=discord.Colour.orange(),
        description=_who_where(job, t),
    )
    embed.add_field(name=t("Settings"), value=f"{job.resolution} · {job.duration} s")
    embed.add_field(
        name=t("Cost"),
        value=t("{credits} from the server pool", credits=credits(job.credits, t)),
    )
    embed.add_field(name=t("Why it is here"), value=t(reason), inline=False)
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
                embed=job_entry(job, guild_words(self.bot, job.guild_id)),
                allowed_mentions=discord.AllowedMentions.none(),
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
                embed=approval_entry(
                    job,
                    reason=N_("Over the member's cap; the pool has credits."),
                    t=guild_words(self.bot, job.guild_id),
                ),
                view=approval_view(job.id, guild_words(self.bot, job.guild_id)),
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as exc:
            log.warning(
                "guild %d: could not post approval for job %d: %s", job.guild_id, job.id, exc
            )
            return None
        return message.id

    async def approval_ended(self, request: ApprovalRequest, text: str | Text) -> None:
        """Mark a request's mod-log message with what became of it, without its buttons (a
        Text is worded in the server's language)."""
        message_id = request.approval.message_id
        channel_id = await self.channel_id(request.job.guild_id)
        if message_id is None or channel_id is None:
            return
        message = self.bot.get_partial_messageable(channel_id).get_partial_message(message_id)
        try:
            await message.edit(
                content=guild_words(self.bot, request.job.guild_id)(text)
                if isinstance(text, Text)
                else text,
                view=None,
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as exc:
            log.info("job %d: could not mark the approval message: %s", request.job.id, exc)

    async def provider_trouble(self, trip: Trip) -> None:
        text = (
            N_(
                "The video service refuses the bot's account (its key or its balance). New "
                "videos are paused until the operator fixes it; nothing is being charged."
            )
            if trip.trouble is Trouble.ACCOUNT
            else N_(
                "The video service is failing repeatedly. New videos are paused until it "
                "answers again; nothing is being charged."
            )
        )
        for guild in self.bot.guilds:
            channel_id = await self.channel_id(guild.id)
            if channel_id is None:
                continue
            try:
                await self.bot.get_partial_messageable(channel_id).send(
                    "⚠️ " + guild_words(self.bot, guild.id)(text),
                    allowed_mentions=discord.AllowedMentions.none(),
                )
            except discord.HTTPException as exc:
                log.warning("guild %d: could not post the service alert: %s", guild.id, exc)
