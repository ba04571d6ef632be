"""The buttons on a job's messages: Cancel on the status, Retry, Remix and Delete on the video.

Their custom ids carry the job id, so they work after a restart. Retry and a submitted Remix
form are heard by the /animate cog as the `job_retry` and `job_remix` events, so no button
ever looks a cog up.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Self, cast

import discord

from bot.errors import UserFacingError
from bot.i18n import ENGLISH, N_, Words, _
from bot.jobs.notify import CancelResult
from bot.models import JobRecord
from cogs._i18n import private_words
from cogs._tree import UNEXPECTED, answering, reply_ephemeral
from cogs.animate.form import Choice, Preset, VideoForm

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)

CANCEL_TEXT = {
    CancelResult.CANCELLED: N_("Cancelled. The credits were released."),
    CancelResult.NOT_ALLOWED: N_(
        "Only the member who asked for this video, or a moderator, can cancel it."
    ),
    CancelResult.NOT_CANCELLABLE: N_(
        "This job can no longer be cancelled: the video service has already started on it."
    ),
    CancelResult.FINISHED: N_("This job has already finished."),
    CancelResult.UNKNOWN: N_("This job no longer exists."),
}


MAX_JOB_ID = 2**63 - 1
"""The largest id a job can have (SQLite's and PostgreSQL's 64-bit integers)."""

GONE = _("This video job no longer exists here, or this button does not belong to this message.")


class JobButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=r"$^"):
    """A button whose custom id is `<prefix>:<action>:<job id>`; subclasses set the look.

    A click is answered whatever it carries: the job must exist, belong to the clicked
    server and (where the job knows its message) sit on the clicked message; otherwise the
    clicker is told plainly. Subclasses act in :meth:`act`.
    """

    prefix = "job"
    action = ""
    label = ""
    """A msgid: the label is worded in the language of the message the button sits on."""
    style = discord.ButtonStyle.secondary
    emoji: str | None = None

    def __init__(self, job_id: int, t: Words = ENGLISH) -> None:
        super().__init__(
            discord.ui.Button(
                label=t(self.label),
                style=self.style,
                custom_id=f"{self.prefix}:{self.action}:{job_id}",
                emoji=self.emoji,
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        digits = match["job_id"]
        # An id no job can have (custom ids are client-made) becomes 0: answered as gone.
        job_id = int(digits) if len(digits) <= 19 and int(digits) <= MAX_JOB_ID else 0
        return cls(job_id)

    async def message_of(self, bot: SeedanceBot, job: JobRecord) -> int | None:
        """The message this button belongs on, when the job knows it."""
        return None

    async def bound_job(self, interaction: discord.Interaction[Any]) -> JobRecord | None:
        """The job, if it exists in the clicked server and the button sits where it belongs."""
        if not 0 < self.job_id <= MAX_JOB_ID or interaction.guild_id is None:
            return None
        bot = cast("SeedanceBot", interaction.client)
        job = await bot.runner.job(self.job_id)
        if job is None or job.guild_id != interaction.guild_id:
            return None
        expected = await self.message_of(bot, job)
        clicked = interaction.message
        if clicked is not None and expected is not None and clicked.id != expected:
            return None
        return job

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        answering(interaction)
        try:
            job = await self.bound_job(interaction)
            if job is None:
                log.info(
                    "member %d clicked %s for job %d: not this server's or message's",
                    interaction.user.id,
                    self.action,
                    self.job_id,
                )
                await reply_ephemeral(interaction, GONE)
                return
            await self.act(interaction, job)
        except UserFacingError as exc:
            await reply_ephemeral(interaction, exc.text)
        except Exception:
            log.exception("job %d: the %s button failed", self.job_id, self.action)
            await reply_ephemeral(interaction, UNEXPECTED)

    act: Callable[[discord.Interaction[Any], JobRecord], Awaitable[None]]
    """What the click does, once the job is known to be this server's and message's (each
    button class defines it)."""


class CancelButton(JobButton, template=r"job:cancel:(?P<job_id>[0-9]+)"):
    """Cancel a job not yet running; the requester or a moderator only."""

    action, label, style, emoji = "cancel", N_("Cancel"), discord.ButtonStyle.danger, "✖️"

    async def message_of(self, bot: SeedanceBot, job: JobRecord) -> int | None:
        return job.status_message_id

    async def act(self, interaction: discord.Interaction[Any], job: JobRecord) -> None:
        bot = cast("SeedanceBot", interaction.client)
        await interaction.response.defer(ephemeral=True, thinking=True)
        result = await bot.runner.cancel(
            job.id,
            actor_id=interaction.user.id,
            is_moderator=interaction.permissions.manage_guild,
        )
        await reply_ephemeral(interaction, _(CANCEL_TEXT[result]))


class RetryButton(JobButton, template=r"job:retry:(?P<job_id>[0-9]+)"):
    """Run a delivered job again with the same inputs (a new job, charged anew)."""

    action, label, emoji = "retry", N_("Retry"), "🔁"

    async def message_of(self, bot: SeedanceBot, job: JobRecord) -> int | None:
        return job.result_message_id

    async def act(self, interaction: discord.Interaction[Any], job: JobRecord) -> None:
        # Acknowledge at once; the /animate cog hears `on_job_retry` and answers privately.
        await interaction.response.defer(ephemeral=True, thinking=True)
        interaction.client.dispatch("job_retry", interaction, job.id)


class RemixButton(JobButton, template=r"job:remix:(?P<job_id>[0-9]+)"):
    """Open the video form pre-filled with a delivered job's prompt and settings; the
    requester only. The submitted form makes a new job from the same frames, charged anew."""

    action, label, emoji = "remix", N_("Remix"), "🎛️"

    async def message_of(self, bot: SeedanceBot, job: JobRecord) -> int | None:
        return job.result_message_id

    async def act(self, interaction: discord.Interaction[Any], job: JobRecord) -> None:
        if interaction.user.id != job.member_id:
            await reply_ephemeral(
                interaction, _("Only the member who asked for this video can remix it.")
            )
            return
        bot = cast("SeedanceBot", interaction.client)
        preset = Preset(
            prompt=job.prompt,
            resolution=job.resolution,
            duration=job.duration,
            last_frame=True if job.last_frame_url else None,
            last_frame_yes=N_("Keep the same last frame"),
        )

        async def submitted(done: discord.Interaction[Any], choice: Choice) -> None:
            # Acknowledged by the form; the /animate cog hears `on_job_remix` and answers.
            done.client.dispatch("job_remix", done, job.id, choice)

        t = private_words(interaction)
        form = VideoForm(
            title=t("Remix this video"),
            custom_id=f"job:remix-form:{job.id}",
            preset=preset,
            costs=bot.config.quota.cost,
            on_done=submitted,
            t=t,
        )
        # A form can only be the first answer to a click: no defer before it.
        await interaction.response.send_modal(form)


class DeleteButton(JobButton, template=r"job:delete:(?P<job_id>[0-9]+)"):
    """Remove a delivered video from the channel; the requester or a moderator only."""

    action, label, emoji = "delete", N_("Delete"), "🗑️"

    async def message_of(self, bot: SeedanceBot, job: JobRecord) -> int | None:
        return job.result_message_id

    async def act(self, interaction: discord.Interaction[Any], job: JobRecord) -> None:
        if interaction.user.id != job.member_id and not interaction.permissions.manage_guild:
            await reply_ephemeral(
                interaction,
                _("Only the member who asked for this video, or a moderator, can delete it."),
            )
            return
        if interaction.message is None:
            await reply_ephemeral(interaction, _("That message is already gone."))
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            await interaction.message.delete()
        except discord.NotFound:
            log.info("job %d: the video message was already deleted", job.id)
        except discord.HTTPException:
            await reply_ephemeral(interaction, _("I could not delete that message."))
            return
        await reply_ephemeral(interaction, _("Deleted."))


def delivered_view(job_id: int, t: Words = ENGLISH) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(RetryButton(job_id, t))
    view.add_item(RemixButton(job_id, t))
    view.add_item(DeleteButton(job_id, t))
    return view


def cancel_view(job_id: int, t: Words = ENGLISH) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id, t))
    return view
