"""`/animate`: turn a member's image and prompt into a job, and show it in the channel."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import frames
from bot.errors import UserFacingError
from bot.i18n import C_, N_
from bot.models import NewJob
from bot.tasks import TaskSet
from cogs._tree import UNEXPECTED, answering, reply_ephemeral
from cogs.animate.again import Again
from cogs.animate.buttons import CancelButton, DeleteButton, RemixButton, RetryButton
from cogs.animate.form import Choice
from cogs.animate.launcher import Launcher, attachment_frame, require_channel
from cogs.animate.menu import AnimateMenu
from cogs.animate.notifier import FIRST_FRAME, LAST_FRAME

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)

RESOLUTION_CHOICES = [app_commands.Choice(name=r, value=r) for r in ("480p", "720p", "1080p")]
DURATION_CHOICES = [app_commands.Choice(name=str(s), value=s) for s in (5, 10)]
BUTTONS = (CancelButton, RetryButton, RemixButton, DeleteButton)
# The options' names as members read them (discord.py takes them from the parameters).
OPTION_NAMES = (
    C_("command", "image"),
    C_("command", "prompt"),
    C_("command", "last_frame"),
    C_("command", "resolution"),
    C_("command", "duration"),
)


class AnimateCog(commands.Cog):
    """The /animate command and the jobs it starts."""

    def __init__(self, bot: SeedanceBot) -> None:
        self.bot = bot
        self.tasks = TaskSet()
        self.launcher = Launcher(bot, self.tasks)
        self.again = Again(self.launcher)
        self.menu = AnimateMenu(bot, self.launcher)

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(*BUTTONS)
        self.bot.tree.add_command(self.menu.command)
        # Jobs the bot resumes after a start are shown in their channel the same way.
        self.bot.notifier_for = self.launcher.notifier

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(*BUTTONS)
        self.bot.tree.remove_command(self.menu.command.name, type=self.menu.command.type)
        self.bot.notifier_for = None
        await self.tasks.cancel_all()

    @app_commands.command(
        name=C_("command", "animate"),
        description=N_("Turn an image and a prompt into a short video."),
    )
    @app_commands.guild_only()
    @app_commands.describe(
        image=N_("The first frame: JPEG, PNG, WebP, BMP, TIFF or a still GIF, under 30 MB"),
        prompt=N_("What should happen in the video"),
        last_frame=N_("Optional last frame (no effect at 1080p)"),
        resolution=N_("Video resolution (costs more credits at higher resolutions)"),
        duration=N_("Length in seconds"),
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
        require_channel(interaction)
        assert interaction.guild_id is not None and interaction.channel_id is not None

        images = [attachment_frame(FIRST_FRAME, frames.IMAGE_LABEL, image)]
        if last_frame is not None:
            images.append(attachment_frame(LAST_FRAME, frames.LAST_FRAME_LABEL, last_frame))
        defaults = self.bot.config.animate
        new = NewJob(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            member_id=interaction.user.id,
            prompt=prompt.strip(),
            image_url=image.url,
            last_frame_url=last_frame.url if last_frame else None,
            resolution=resolution.value
            if resolution
            else self.bot.config.animate.default_resolution,
            duration=duration.value if duration else defaults.default_duration,
        )
        await self.launcher.launch(interaction, new, images)

    @commands.Cog.listener()
    async def on_job_retry(self, interaction: discord.Interaction[Any], job_id: int) -> None:
        """A Retry button was pressed (and acknowledged): run the job again, answer privately."""
        answering(interaction)
        try:
            await self.again.retry(interaction, job_id)
        except UserFacingError as exc:
            await reply_ephemeral(interaction, exc.text)
        except Exception:
            log.exception("job %d: retry failed", job_id)
            await reply_ephemeral(interaction, UNEXPECTED)

    @commands.Cog.listener()
    async def on_job_remix(
        self, interaction: discord.Interaction[Any], job_id: int, choice: Choice
    ) -> None:
        """A Remix form came back (acknowledged): a new job from the same frames."""
        answering(interaction)
        try:
            await self.again.remix(interaction, job_id, choice)
        except UserFacingError as exc:
            await reply_ephemeral(interaction, exc.text)
        except Exception:
            log.exception("job %d: remix failed", job_id)
            await reply_ephemeral(interaction, UNEXPECTED)

    @commands.Cog.listener()
    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        """A channel was deleted: its jobs nothing was spent on yet are called off."""
        await self._channel_gone(channel.guild.id, channel.id)

    @commands.Cog.listener()
    async def on_raw_thread_delete(self, payload: discord.RawThreadDeleteEvent) -> None:
        """A thread was deleted, alone or with its channel (discord.py tells of each thread
        it knew there): the same for its jobs."""
        await self._channel_gone(payload.guild_id, payload.thread_id)

    async def _channel_gone(self, guild_id: int, channel_id: int) -> None:
        try:
            stopped = await self.bot.runner.channel_gone(guild_id, channel_id)
        except Exception:
            # Their end still reaches their members by DM once it comes.
            log.exception("channel %d was deleted; its jobs were not called off", channel_id)
            return
        if stopped:
            log.info("channel %d was deleted: %d waiting job(s) called off", channel_id, stopped)
