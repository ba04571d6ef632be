"""The Launcher: turns a checked request into a job on the channel, for /animate and Retry alike.

Cheap checks first: screen (breaker, gates, blocklist) → credits and job caps as stored (a
read) → the member's cooldown; only then the images are fetched for the frame rules →
reserve → start, with the status message posted when the channel's budget allows (in a
channel that has not just taken a post of the bot's, the status first), or ask the
moderators when the request is over the member's cap. Anything that fails before the start
releases the reservation and tells the member nothing was charged.
"""

from __future__ import annotations

import asyncio
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
from bot.i18n import N_, Words, _
from bot.models import JobRecord, JobState, NewJob
from bot.tasks import TaskSet
from cogs._i18n import private_words
from cogs._render import PERIOD_WORD, credits, message_link, refusal_message, ts
from cogs.animate.delivery import DEFAULT_UPLOAD_LIMIT
from cogs.animate.notifier import ChannelNotifier, FrameCopy
from cogs.animate.pacer import ChannelPacer

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
LAUNCHES_AT_ONCE = 32
"""Requests whose images are being fetched and decoded at once; more wait."""
SUBMIT_SETTLE = 5.0
"""Seconds the status of a job started at once waits at most for its submission to land, so
it is posted showing the queue rather than posted and edited a moment later."""

REQUIRED_PERMISSIONS = (
    "view_channel",
    "send_messages",
    "embed_links",
    "attach_files",
    # To look for a video post whose answer was lost before posting it again.
    "read_message_history",
)


def require_channel(interaction: discord.Interaction[Any]) -> None:
    """A server channel (or thread) where the bot can show the job and post the video."""
    if interaction.guild_id is None or interaction.channel_id is None:
        raise UserFacingError(_("This command only works in a server channel."))
    needed = list(REQUIRED_PERMISSIONS)
    if isinstance(interaction.channel, discord.Thread):
        # In a thread, posting is its own permission.
        needed[needed.index("send_messages")] = "send_messages_in_threads"
    permissions = interaction.app_permissions
    missing = [name for name in needed if not getattr(permissions, name)]
    if missing:
        names = ", ".join(m.replace("_", " ").title() for m in missing)
        raise UserFacingError(
            _("I can't post videos in this channel: I am missing {names}.", names=names)
        )


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
    """Starts jobs from interactions; owned by the /animate cog, shared with the Animate menu
    and with Retry and Remix (`cogs.animate.again`)."""

    def __init__(self, bot: SeedanceBot, tasks: TaskSet) -> None:
        self.bot = bot
        self.tasks = tasks
        self.cooldown = Cooldown(bot.config.animate.cooldown_seconds)
        self._pacers: dict[int, ChannelPacer] = {}
        self._launching = asyncio.Semaphore(LAUNCHES_AT_ONCE)

    def pacer(self, channel_id: int) -> ChannelPacer:
        """The channel's one message budget, shared by every job shown there."""
        pacer = self._pacers.get(channel_id)
        if pacer is None:
            pacer = self._pacers[channel_id] = ChannelPacer(
                self.tasks, budget=self.bot.discord_budget
            )
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
        t = private_words(interaction)
        job, copies = await self._admit(request, images, t)
        notifier = ChannelNotifier(
            self.bot,
            channel_id=job.channel_id,
            status_message_id=None,
            upload_limit=interaction.filesize_limit,
            pacer=self.pacer(job.channel_id),
        )
        runner = self.bot.runner
        runner.hold(job.id)
        try:
            link = await self._show_and_start(job, notifier, copies)
        finally:
            # Started, abandoned, or (on a fault after the post) left to the next sweep.
            runner.let_go(job.id)

        if job.state is JobState.PENDING_APPROVAL:
            await self._ask_moderators(job, notifier)
            lines = [
                t(
                    "This is over your credit cap, so it went to the moderators: if they "
                    "approve, it runs on the server's pool. Follow it here: {link}",
                    link=link,
                )
            ]
        else:
            # The requester's credits are theirs to see: here, never on the public status.
            usage = await self.bot.guild_admin.usage(job.guild_id, job.member_id, request.role_ids)
            left = t(
                "{left} of {limit} left {period}",
                left=usage.member_left,
                limit=credits(usage.member_limit, t),
                period=_(PERIOD_WORD[usage.period]),
            )
            lines = [t("Your video is on its way: {link} · {left}", link=link, left=left)]
        note = frames.last_frame_note(new.resolution, new.last_frame_url is not None)
        if note:
            lines.append(t(note))
        await interaction.edit_original_response(
            content="\n".join(lines), allowed_mentions=discord.AllowedMentions.none()
        )

    async def _admit(
        self, request: Request, images: list[Frame], t: Words
    ) -> tuple[JobRecord, list[FrameCopy]]:
        """Screen, check and reserve: the stored job and the copies of its frames."""
        new = request.job
        view = await self.bot.admission.screen(request)
        try:
            await self.bot.admission.precheck(request, view)
        except QuotaExceeded as exc:
            raise UserFacingError(refusal_message(exc.refusal)) from None
        wait = self.cooldown.take(new.guild_id, new.member_id)
        if wait > 0:
            when = datetime.now(UTC) + timedelta(seconds=wait + 1)
            raise UserFacingError(
                _(
                    "One video request at a time, please: you can try again {when}. "
                    "Nothing was charged.",
                    when=ts(when),
                )
            )
        # The image downloads and decoding a few requests at a time: a burst of requests is
        # acknowledged at once and queues here, never the other way round, and never holds
        # more than a few requests' images in memory.
        async with self._launching:
            copies = await self._check_frames(new.prompt, images, t)
        try:
            return await self.bot.admission.accept(request), copies
        except QuotaExceeded as exc:
            raise UserFacingError(refusal_message(exc.refusal)) from None

    async def _show_and_start(
        self, job: JobRecord, notifier: ChannelNotifier, copies: list[FrameCopy]
    ) -> str:
        """Post the job's status message and start the job (unless a moderator decides);
        the link to the status message.

        In a channel that took the bot's last post (or takes the one on its way now), the job
        starts at once and its status follows within the channel's budget, showing the job as
        it is by then: Discord's pace never holds up the video. Anywhere else the status is
        posted first: when it cannot be, the job is released and never starts.
        """
        runner = self.bot.runner
        decides = job.state is JobState.PENDING_APPROVAL
        early = not decides and await self.pacer(job.channel_id).vouched()
        settle = SUBMIT_SETTLE if early else 0.0
        posting = asyncio.ensure_future(notifier.post_status(job, copies, settle=settle))
        started = False
        if early:
            try:
                started = await runner.start(job, notifier)
            except BaseException:
                posting.cancel()
                raise
            if not started:
                notifier.show_soon(job)
        try:
            status = await posting
        except Exception as exc:
            if started and isinstance(exc, discord.Forbidden | discord.NotFound):
                # The channel refuses the bot's posts now (it took the last one): the video
                # could not be shown or posted there. Called off while it waits in the queue,
                # nothing is spent on it; past that it runs on, and the member hears by DM.
                log.warning("job %d: the channel refused its status message: %r", job.id, exc)
                # Told before the ending is shown: the answer below tells them, not a DM.
                notifier.told_privately()
                if await runner.call_off(job.id, N_("The status message could not be posted.")):
                    await runner.final_shown(job.id)
                    raise UserFacingError(
                        _(
                            "I could not post in this channel, so the video was stopped. "
                            "Nothing was charged."
                        )
                    ) from None
                # Past the queue: it is made all the same, and its end reaches them by DM.
                notifier.told_privately(False)
                raise UserFacingError(
                    _(
                        "I can no longer post in this channel, so this video cannot be shown "
                        "there. It is already being made: I will try to tell you by DM how it "
                        "ends. Nothing is charged unless it is posted."
                    )
                ) from None
            if started:
                # Running already: its status is posted with the same nonce when it changes.
                log.warning("job %d: status message not posted yet: %r", job.id, exc)
                current = await runner.job(job.id)
                if current is not None:
                    await notifier.job_changed(current)
                return f"<#{job.channel_id}>"
            # Refused, or timed out or cut every time it was sent: the job never starts.
            log.warning("job %d: status message not posted: %r", job.id, exc)
            await self.bot.runner.abandon(job, N_("The status message could not be posted."))
            raise UserFacingError(
                _(
                    "I could not post in this channel, so the video was not started. "
                    "Nothing was charged."
                )
            ) from None
        await runner.shown_at(job.id, status.id)
        if not decides and not started:
            await runner.start(job, notifier)
        return message_link(job.guild_id, job.channel_id, status.id)

    async def _check_frames(self, prompt: str, images: list[Frame], t: Words) -> list[FrameCopy]:
        """Every frame rule on the prompt and the images, all violations in one message.

        Returns copies of the accepted frames, to keep on the status message.
        """
        check = await frames.check_request(prompt, [(f.meta, f.download) for f in images])
        if not check.ok:
            raise UserFacingError(frames.render_violations(check.violations, t=t))
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
                _(
                    "This is over your credit cap, and no moderator channel is set up to "
                    "approve it. Nothing was charged."
                )
            )
        await self.bot.guild_admin.set_approval_message(job.id, message_id)
        self.bot.runner.watch(job, notifier)
