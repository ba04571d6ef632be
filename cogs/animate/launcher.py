"""The Launcher: turns a checked request into a job on the channel, for /animate and Retry alike.

Cheap checks first: screen (breaker, gates, blocklist) → credits and job caps as stored (a
read) → the member's cooldown; only then the images are fetched for the frame rules →
reserve → status message → start, or ask the moderators when the request is over the
member's cap. Anything that fails after the reservation releases it and tells the member
nothing was charged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import discord

from bot import frames
from bot.admission import Request
from bot.errors import QuotaExceeded, UserFacingError
from bot.models import JobRecord, JobState, NewJob
from bot.tasks import TaskSet
from cogs._render import PERIOD_WORD, credits, message_link, refusal_message, ts
from cogs.animate.notifier import (
    DEFAULT_UPLOAD_LIMIT,
    FIRST_FRAME,
    LAST_FRAME,
    ChannelNotifier,
    FrameCopy,
)
from cogs.animate.pacer import ChannelPacer, RequestBudget

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)

EXTENSIONS = {
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "PNG": ".png",
    "WEBP": ".webp",
    "BMP": ".bmp",
    "TIFF": ".tiff",
    "GIF": ".gif",
}

Download = Callable[[], Awaitable[bytes]]


@dataclass(frozen=True)
class Frame:
    """One input image as the member gave it: what Discord says of it, and how to fetch it."""

    kind: str
    """``first-frame`` or ``last-frame``: its name when kept on the status message."""
    meta: frames.AttachmentMeta
    download: Download


def attachment_frame(kind: str, label: str, attachment: discord.Attachment) -> Frame:
    """A frame from a slash-command attachment."""

    async def download() -> bytes:
        try:
            return await attachment.read()
        except discord.HTTPException as exc:
            log.info("could not read attachment %s: %s", attachment.filename, exc)
            raise frames.AttachmentUnavailable(attachment.filename) from exc

    meta = frames.AttachmentMeta(
        label=label,
        filename=attachment.filename,
        size=attachment.size,
        content_type=attachment.content_type,
    )
    return Frame(kind, meta, download)


def role_ids(user: discord.abc.User) -> tuple[int, ...]:
    """The member's role ids, for role-based credit limits (none outside a server)."""
    return tuple(role.id for role in getattr(user, "roles", []))


def parent_channel(interaction: discord.Interaction[Any]) -> int | None:
    """A thread counts as its parent channel for the allowed-channels list."""
    return getattr(interaction.channel, "parent_id", None)


class Cooldown:
    """When each member (per server) may next make the bot fetch images for them."""

    MEMORY = 10_000
    """Members remembered before the ones whose wait is over are let go."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._until: dict[tuple[int, int], float] = {}

    def take(self, guild_id: int, member_id: int) -> float:
        """0 and the cooldown starts, or the seconds the member still has to wait."""
        if self.seconds <= 0:
            return 0.0
        now = self._clock()
        key = (guild_id, member_id)
        left = self._until.get(key, now) - now
        if left > 0:
            return left
        if len(self._until) >= self.MEMORY:
            self._until = {k: t for k, t in self._until.items() if t > now}
        self._until[key] = now + self.seconds
        return 0.0


class Launcher:
    """Starts jobs from interactions; owned by the /animate cog, shared with Retry."""

    def __init__(self, bot: SeedanceBot, tasks: TaskSet) -> None:
        self.bot = bot
        self.tasks = tasks
        self.cooldown = Cooldown(bot.config.animate.cooldown_seconds)
        self._pacers: dict[int, ChannelPacer] = {}
        # Discord's limit on all of the bot's requests, shared by every channel.
        self._budget = RequestBudget(rate=bot.config.discord.requests_per_second)

    def pacer(self, channel_id: int) -> ChannelPacer:
        """The channel's one message budget, shared by every job shown there."""
        pacer = self._pacers.get(channel_id)
        if pacer is None:
            pacer = self._pacers[channel_id] = ChannelPacer(self.tasks, budget=self._budget)
        return pacer

    def notifier(self, job: JobRecord, *, upload_limit: int | None = None) -> ChannelNotifier:
        """The notifier of a job already stored (resumed, approved, or shown again)."""
        if upload_limit is None:
            guild = self.bot.get_guild(job.guild_id)
            upload_limit = guild.filesize_limit if guild else DEFAULT_UPLOAD_LIMIT
        return ChannelNotifier(
            self.bot,
            channel_id=job.channel_id,
            status_message_id=job.status_message_id,
            upload_limit=upload_limit,
            pacer=self.pacer(job.channel_id),
        )

    async def launch(
        self, interaction: discord.Interaction[Any], new: NewJob, images: list[Frame]
    ) -> None:
        """Check, reserve, show and start one job; the member is answered privately."""
        request = Request(
            job=new,
            role_ids=role_ids(interaction.user),
            parent_channel_id=parent_channel(interaction),
        )
        view = await self.bot.admission.screen(request)
        try:
            await self.bot.admission.precheck(request, view)
        except QuotaExceeded as exc:
            raise UserFacingError(refusal_message(exc.refusal)) from None
        wait = self.cooldown.take(new.guild_id, new.member_id)
        if wait > 0:
            when = datetime.now(UTC) + timedelta(seconds=wait + 1)
            raise UserFacingError(
                f"One video request at a time, please: you can try again {ts(when)}. "
                "Nothing was charged."
            )
        copies = await self._check_frames(new.prompt, images)
        try:
            job = await self.bot.admission.accept(request)
        except QuotaExceeded as exc:
            raise UserFacingError(refusal_message(exc.refusal)) from None

        notifier = ChannelNotifier(
            self.bot,
            channel_id=job.channel_id,
            status_message_id=None,
            upload_limit=interaction.filesize_limit,
            pacer=self.pacer(job.channel_id),
        )
        try:
            status = await notifier.post_status(job, copies)
        except Exception as exc:
            # Refused, timed out or the connection dropped: the job never starts.
            log.warning("job %d: status message not posted: %r", job.id, exc)
            await self.bot.runner.abandon(job, "The status message could not be posted.")
            raise UserFacingError(
                "I could not post in this channel, so the video was not started. "
                "Nothing was charged."
            ) from None
        await self.bot.runner.shown_at(job.id, status.id)
        link = message_link(job.guild_id, job.channel_id, status.id)

        if job.state is JobState.PENDING_APPROVAL:
            await self._ask_moderators(job, notifier)
            lines = [
                "This is over your credit cap, so it went to the moderators: if they approve, "
                f"it runs on the server's pool. Follow it here: {link}"
            ]
        else:
            await self.bot.runner.start(job, notifier)
            # The requester's credits are theirs to see: here, never on the public status.
            usage = await self.bot.guild_admin.usage(job.guild_id, job.member_id, request.role_ids)
            left = (
                f"{usage.member_left} of {credits(usage.member_limit)} left "
                f"{PERIOD_WORD[usage.period]}"
            )
            lines = [f"Your video is on its way: {link} · {left}"]
        note = frames.last_frame_note(new.resolution, new.last_frame_url is not None)
        if note:
            lines.append(note)
        await interaction.edit_original_response(
            content="\n".join(lines), allowed_mentions=discord.AllowedMentions.none()
        )

    async def _check_frames(self, prompt: str, images: list[Frame]) -> list[FrameCopy]:
        """Every frame rule on the prompt and the images, all violations in one message.

        Returns copies of the accepted frames, to keep on the status message.
        """
        check = await frames.check_request(prompt, [(f.meta, f.download) for f in images])
        if not check.ok:
            raise UserFacingError(frames.render_violations(check.violations))
        return [
            FrameCopy(f"{frame.kind}{EXTENSIONS.get(facts.format, '.img')}", data)
            for frame, facts, data in zip(images, check.images, check.data, strict=True)
        ]

    async def _ask_moderators(self, job: JobRecord, notifier: ChannelNotifier) -> None:
        desk = self.bot.runner.desk
        message_id = await desk.approval_needed(job) if desk is not None else None
        if message_id is None:
            await self.bot.runner.cancel(job.id, actor_id=job.member_id, is_moderator=False)
            current = await self.bot.runner.job(job.id)
            if current is not None:
                await notifier.job_changed(current)
            raise UserFacingError(
                "This is over your credit cap, and no moderator channel is set up to approve it. "
                "Nothing was charged."
            )
        await self.bot.guild_admin.set_approval_message(job.id, message_id)
        self.bot.runner.watch(job, notifier)

    async def retry(self, interaction: discord.Interaction[Any], job_id: int) -> None:
        """Run a finished job again with the same inputs, as a new job with its own charge."""
        old = await self.bot.runner.job(job_id)
        if old is None or old.guild_id != interaction.guild_id:
            raise UserFacingError("This job no longer exists.")
        if interaction.user.id != old.member_id:
            raise UserFacingError("Only the member who asked for this video can run it again.")
        images, first_url, last_url = await self._frames_from_status(old)
        new = NewJob(
            guild_id=old.guild_id,
            channel_id=old.channel_id,
            member_id=old.member_id,
            prompt=old.prompt,
            image_url=first_url or old.image_url,
            last_frame_url=last_url or old.last_frame_url,
            resolution=old.resolution,
            duration=old.duration,
        )
        await self.launch(interaction, new, images)

    async def _frames_from_status(
        self, job: JobRecord
    ) -> tuple[list[Frame], str | None, str | None]:
        """Fresh URLs (and the bytes) of the frames kept on the job's status message.

        Discord's attachment URLs are signed and expire; fetching the message signs them anew.
        """
        if job.status_message_id is None:
            return [], None, None
        channel = self.bot.get_partial_messageable(job.channel_id)
        try:
            message = await channel.fetch_message(job.status_message_id)
        except discord.HTTPException as exc:
            log.info("job %d: status message unavailable for a retry: %s", job.id, exc)
            return [], None, None
        images: list[Frame] = []
        urls: dict[str, str] = {}
        labels = {FIRST_FRAME: frames.IMAGE_LABEL, LAST_FRAME: frames.LAST_FRAME_LABEL}
        for attachment in message.attachments:
            kind = attachment.filename.split(".", 1)[0]
            if kind in labels:
                urls[kind] = attachment.url
                images.append(attachment_frame(kind, labels[kind], attachment))
        return images, urls.get(FIRST_FRAME), urls.get(LAST_FRAME)
