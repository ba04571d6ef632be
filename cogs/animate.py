"""`/animate`: turn a member's image and prompt into a job, and show it in the channel."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import frames
from bot.errors import UserFacingError
from bot.store import NewJob, QuotaExceeded
from bot.tasks import TaskSet
from cogs.buttons import CancelButton
from cogs.reporter import DEFAULT_UPLOAD_LIMIT, ChannelReporter
from cogs.status import refusal_message

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)

REQUIRED_PERMISSIONS = ("view_channel", "send_messages", "embed_links", "attach_files")
RESOLUTION_CHOICES = [app_commands.Choice(name=r, value=r) for r in ("480p", "720p", "1080p")]
DURATION_CHOICES = [app_commands.Choice(name=str(s), value=s) for s in (5, 10)]


def missing_permissions(permissions: discord.Permissions) -> list[str]:
    return [name for name in REQUIRED_PERMISSIONS if not getattr(permissions, name)]


class AnimateCog(commands.Cog):
    """The /animate command and the jobs it starts."""

    def __init__(self, bot: SeedanceBot) -> None:
        self.bot = bot
        self.tasks = TaskSet()

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(CancelButton)
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
        self.bot.remove_dynamic_items(CancelButton)
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
        await self._check_inputs(text, image, last_frame)

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
        try:
            job = await self.bot.jobs.accept(new)
        except QuotaExceeded as exc:
            raise UserFacingError(
                refusal_message(exc.refusal, self.bot.config.quota.period.value)
            ) from None

        reporter = ChannelReporter(
            self.bot,
            channel_id=job.channel_id,
            status_message_id=None,
            upload_limit=interaction.filesize_limit,
            tasks=self.tasks,
        )
        try:
            status = await reporter.post_status(job)
        except discord.HTTPException as exc:
            log.warning("job %d: status message refused: %s", job.id, exc)
            await self.bot.jobs.abandon(job.id, "The status message could not be posted.")
            raise UserFacingError(
                "I could not post in this channel, so the video was not started. "
                "Nothing was charged."
            ) from None
        await self.bot.jobs.set_status_message(job.id, status.id)
        self.bot.jobs.start(job, reporter)

        lines = [f"Your video is on its way: {status.jump_url}"]
        note = frames.last_frame_note(res, last_frame is not None)
        if note:
            lines.append(note)
        await interaction.edit_original_response(
            content="\n".join(lines), allowed_mentions=discord.AllowedMentions.none()
        )

    async def _check_inputs(
        self, prompt: str, image: discord.Attachment, last_frame: discord.Attachment | None
    ) -> None:
        """Every frame rule on the prompt and both images; all violations in one message."""
        violations = frames.check_prompt(prompt)
        attachments = [("Image", image)]
        if last_frame is not None:
            attachments.append(("Last frame", last_frame))
        for label, attachment in attachments:
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
            _facts, found = await frames.check_image(label, data)
            violations.extend(found)
        if violations:
            raise UserFacingError(frames.render_violations(violations))


async def setup(bot: SeedanceBot) -> None:
    await bot.add_cog(AnimateCog(bot))
