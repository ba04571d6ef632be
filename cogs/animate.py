"""`/animate`: turn a member's image and prompt into a job, and show it in the channel."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import frames
from bot.errors import QuotaExceeded, UserFacingError
from bot.models import JobRecord, JobState, NewJob
from bot.tasks import TaskSet
from cogs.buttons import ApproveButton, CancelButton, DeleteButton, DenyButton, RetryButton
from cogs.modlog import ModLog
from cogs.reporter import (
    DEFAULT_UPLOAD_LIMIT,
    FIRST_FRAME,
    LAST_FRAME,
    ChannelReporter,
    FrameCopy,
    requester_only,
)
from cogs.status import message_link, refusal_message

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)

REQUIRED_PERMISSIONS = ("view_channel", "send_messages", "embed_links", "attach_files")
RESOLUTION_CHOICES = [app_commands.Choice(name=r, value=r) for r in ("480p", "720p", "1080p")]
DURATION_CHOICES = [app_commands.Choice(name=str(s), value=s) for s in (5, 10)]
EXTENSIONS = {
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "PNG": ".png",
    "WEBP": ".webp",
    "BMP": ".bmp",
    "TIFF": ".tiff",
    "GIF": ".gif",
}


BUTTONS = (CancelButton, RetryButton, DeleteButton, ApproveButton, DenyButton)


def role_ids(user: discord.abc.User) -> tuple[int, ...]:
    """The member's role ids, for role-based credit limits (none outside a server)."""
    return tuple(role.id for role in getattr(user, "roles", []))


def parent_channel(interaction: discord.Interaction[Any]) -> int | None:
    """A thread counts as its parent channel for the allowed-channels list."""
    return getattr(interaction.channel, "parent_id", None)


def missing_permissions(permissions: discord.Permissions) -> list[str]:
    return [name for name in REQUIRED_PERMISSIONS if not getattr(permissions, name)]


class AnimateCog(commands.Cog):
    """The /animate command and the jobs it starts."""

    def __init__(self, bot: SeedanceBot) -> None:
        self.bot = bot
        self.tasks = TaskSet()

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(*BUTTONS)
        for request in await self.bot.jobs.pending_approvals():
            self.bot.jobs.watch(request.job, self._reporter_for(request.job))
        for job in await self.bot.jobs.unfinished_jobs():
            guild = self.bot.get_guild(job.guild_id)
            reporter = ChannelReporter(
                self.bot,
                channel_id=job.channel_id,
                status_message_id=job.status_message_id,
                upload_limit=guild.filesize_limit if guild else DEFAULT_UPLOAD_LIMIT,
                tasks=self.tasks,
            )
            log.info("resuming job %d (%s)", job.id, job.state.value)
            self.bot.jobs.start(job, reporter)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(*BUTTONS)
        await self.tasks.cancel_all()

    @app_commands.command(
        name="animate", description="Turn an image and a prompt into a short video."
    )
    @app_commands.guild_only()
    @app_commands.describe(
        image="The first frame: JPEG, PNG, WebP, BMP, TIFF or a still GIF, under 30 MB",
        prompt="What should happen in the video",
        last_frame="Optional last frame (no effect at 1080p)",
        resolution="Video resolution (costs more credits at higher resolutions)",
        duration="Length in seconds",
    )
    @app_commands.choices(resolution=RESOLUTION_CHOICES)
    @app_commands.choices(duration=DURATION_CHOICES)
    async def animate(
        self,
        interaction: discord.Interaction[Any],
        image: discord.Attachment,
        prompt: app_commands.Range[str, 1, 1900],
        last_frame: discord.Attachment | None = None,
        resolution: app_commands.Choice[str] | None = None,
        duration: app_commands.Choice[int] | None = None,
    ) -> None:
        # Discord drops an interaction not answered within 3 s: acknowledge before any work.
        await interaction.response.defer(ephemeral=True, thinking=True)
        if interaction.guild_id is None or interaction.channel_id is None:
            raise UserFacingError("This command only works in a server channel.")
        await self.bot.jobs.ensure_provider_ready()
        missing = missing_permissions(interaction.app_permissions)
        if missing:
            names = ", ".join(m.replace("_", " ").title() for m in missing)
            raise UserFacingError(f"I can't post videos in this channel: I am missing {names}.")

        res = resolution.value if resolution else self.bot.config.animate.default_resolution
        secs = duration.value if duration else self.bot.config.animate.default_duration
        text = prompt.strip()
        await self.bot.jobs.check_gates(
            interaction.guild_id,
            interaction.user.id,
            interaction.channel_id,
            prompt=text,
            parent_channel_id=parent_channel(interaction),
        )
        copies = await self._check_inputs(text, image, last_frame)

        new = NewJob(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            member_id=interaction.user.id,
            prompt=text,
            image_url=image.url,
            last_frame_url=last_frame.url if last_frame else None,
            resolution=res,
            duration=secs,
        )
        await self._launch(interaction, new, copies)

    async def retry(self, interaction: discord.Interaction[Any], job_id: int) -> None:
        """Run a finished job again with the same inputs, as a new job with its own charge."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        old = await self.bot.jobs.get_job(job_id)
        if old is None:
            raise UserFacingError("This job no longer exists.")
        if interaction.user.id != old.member_id:
            raise UserFacingError("Only the member who asked for this video can run it again.")
        await self.bot.jobs.ensure_provider_ready()
        await self.bot.jobs.check_gates(
            old.guild_id,
            old.member_id,
            old.channel_id,
            prompt=old.prompt,
            parent_channel_id=parent_channel(interaction),
        )
        copies, first_url, last_url = await self._frames_from_status(old)
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
        await self._launch(interaction, new, copies)

    async def _frames_from_status(
        self, job: JobRecord
    ) -> tuple[list[FrameCopy], str | None, str | None]:
        """Fresh URLs (and bytes) of the frames kept on the job's status message.

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
        copies: list[FrameCopy] = []
        urls: dict[str, str] = {}
        for attachment in message.attachments:
            kind = attachment.filename.split(".", 1)[0]
            if kind in (FIRST_FRAME, LAST_FRAME):
                urls[kind] = attachment.url
                try:
                    copies.append(FrameCopy(attachment.filename, await attachment.read()))
                except discord.HTTPException:
                    log.info("job %d: could not re-read %s", job.id, attachment.filename)
        return copies, urls.get(FIRST_FRAME), urls.get(LAST_FRAME)

    async def _launch(
        self, interaction: discord.Interaction[Any], new: NewJob, copies: list[FrameCopy]
    ) -> None:
        """Quota, persist, status message, start: the part /animate and Retry share."""
        roles = role_ids(interaction.user)
        try:
            job = await self.bot.jobs.accept(
                new, role_ids=roles, parent_channel_id=parent_channel(interaction)
            )
        except QuotaExceeded as exc:
            raise UserFacingError(refusal_message(exc.refusal)) from None

        reporter = ChannelReporter(
            self.bot,
            channel_id=job.channel_id,
            status_message_id=None,
            upload_limit=interaction.filesize_limit,
            tasks=self.tasks,
            role_ids=roles,
        )
        try:
            status = await reporter.post_status(job, copies)
        except discord.HTTPException as exc:
            log.warning("job %d: status message refused: %s", job.id, exc)
            await self.bot.jobs.abandon(job, "The status message could not be posted.")
            raise UserFacingError(
                "I could not post in this channel, so the video was not started. "
                "Nothing was charged."
            ) from None
        await self.bot.jobs.set_status_message(job.id, status.id)
        link = message_link(job.guild_id, job.channel_id, status.id)

        if job.state is JobState.PENDING_APPROVAL:
            await self._ask_moderators(job, reporter)
            lines = [
                "This is over your credit cap, so it went to the moderators: if they approve, "
                f"it runs on the server's pool. Follow it here: {link}"
            ]
        else:
            self.bot.jobs.start(job, reporter)
            lines = [f"Your video is on its way: {link}"]
        note = frames.last_frame_note(new.resolution, new.last_frame_url is not None)
        if note:
            lines.append(note)
        await interaction.edit_original_response(
            content="\n".join(lines), allowed_mentions=discord.AllowedMentions.none()
        )

    async def _ask_moderators(self, job: JobRecord, reporter: ChannelReporter) -> None:
        message_id = await ModLog(self.bot).request_approval(job)
        if message_id is None:
            await self.bot.jobs.cancel(job.id, actor_id=job.member_id, is_moderator=False)
            await reporter.job_changed(await self._current(job.id))
            raise UserFacingError(
                "This is over your credit cap, and no moderator channel is set up to approve it. "
                "Nothing was charged."
            )
        await self.bot.jobs.set_approval_message(job.id, message_id)
        self.bot.jobs.watch(job, reporter)

    async def _current(self, job_id: int) -> JobRecord:
        job = await self.bot.jobs.get_job(job_id)
        if job is None:
            raise UserFacingError("This job no longer exists.")
        return job

    def _reporter_for(self, job: JobRecord) -> ChannelReporter:
        guild = self.bot.get_guild(job.guild_id)
        return ChannelReporter(
            self.bot,
            channel_id=job.channel_id,
            status_message_id=job.status_message_id,
            upload_limit=guild.filesize_limit if guild else DEFAULT_UPLOAD_LIMIT,
            tasks=self.tasks,
        )

    async def decide(
        self, interaction: discord.Interaction[Any], job_id: int, *, approve: bool
    ) -> str:
        """A moderator's Approve / Deny on an over-cap request; returns what they are told."""
        assert interaction.guild_id is not None
        moderator = interaction.user.id
        if approve:
            request = await self.bot.jobs.approve(interaction.guild_id, job_id, by=moderator)
        else:
            request = await self.bot.jobs.deny(
                interaction.guild_id,
                job_id,
                by=moderator,
                reason="A moderator declined this request.",
            )
        if not request.changed:
            return "This request was already decided, or withdrawn."
        verdict = "Approved" if approve else "Denied"
        if interaction.message is not None:
            try:
                await interaction.message.edit(
                    content=f"{verdict} by <@{moderator}>.",
                    view=None,
                    allowed_mentions=discord.AllowedMentions.none(),
                )
            except discord.HTTPException as exc:
                log.info("job %d: could not mark the approval message: %s", job_id, exc)
        job = request.job
        reporter = self._reporter_for(job)
        if approve:
            self.bot.jobs.start(job, reporter)
            return "Approved: the video is being made on the server's pool."
        await reporter.job_changed(job)
        try:
            await self.bot.get_partial_messageable(job.channel_id).send(
                f"<@{job.member_id}> a moderator declined your video request. Nothing was charged.",
                allowed_mentions=requester_only(job.member_id),
            )
        except discord.HTTPException as exc:
            log.info("job %d: could not tell the member about the denial: %s", job_id, exc)
        return "Denied: the member was told and nothing was charged."

    async def _check_inputs(
        self, prompt: str, image: discord.Attachment, last_frame: discord.Attachment | None
    ) -> list[FrameCopy]:
        """Every frame rule on the prompt and both images; all violations in one message.

        Returns copies of the accepted frames, to keep on the status message.
        """
        violations = frames.check_prompt(prompt)
        copies: list[FrameCopy] = []
        attachments = [("Image", FIRST_FRAME, image)]
        if last_frame is not None:
            attachments.append(("Last frame", LAST_FRAME, last_frame))
        for label, kind, attachment in attachments:
            meta = frames.AttachmentMeta(
                label=label,
                filename=attachment.filename,
                size=attachment.size,
                content_type=attachment.content_type,
            )
            early = frames.check_metadata(meta)
            if early:
                # Refused from the metadata alone: never download it.
                violations.extend(early)
                continue
            try:
                data = await attachment.read()
            except discord.HTTPException as exc:
                log.info("could not read attachment %s: %s", attachment.filename, exc)
                violations.append(
                    frames.Violation(
                        rule="download", message=f"{label}: the file could not be downloaded."
                    )
                )
                continue
            facts, found = await frames.check_image(label, data)
            violations.extend(found)
            if facts is not None and not found:
                copies.append(FrameCopy(f"{kind}{EXTENSIONS.get(facts.format, '.img')}", data))
        if violations:
            raise UserFacingError(frames.render_violations(violations))
        return copies


async def setup(bot: SeedanceBot) -> None:
    await bot.add_cog(AnimateCog(bot))
