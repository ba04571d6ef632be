"""Retry and Remix: a new job from a finished one's frames, checked and charged like any job.

Discord's attachment URLs are signed and expire; the frames come back from the copies kept on
the job's status message, or from their stored URLs signed anew.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import discord

from bot import frames
from bot.errors import UserFacingError
from bot.i18n import N_, _
from bot.models import JobRecord, NewJob
from cogs.animate.form import Choice
from cogs.animate.launcher import Frame, Launcher, attachment_frame
from cogs.animate.notifier import FIRST_FRAME, LAST_FRAME
from cogs.animate.resign import refreshed_urls

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)


def url_frame(client: discord.Client, kind: str, label: str, url: str) -> Frame:
    """A frame known only by its URL (a job's stored frame, signed anew).

    It passed the frame rules once, so its size is judged on the bytes fetched.
    """
    filename = urlsplit(url).path.rsplit("/", 1)[-1] or "image"

    async def download() -> bytes:
        try:
            data: bytes = await client.http.get_from_cdn(url)
        except (discord.HTTPException, aiohttp.ClientError) as exc:
            log.info("could not fetch stored frame %s: %s", filename, exc)
            raise frames.AttachmentUnavailable(filename) from exc
        return data

    meta = frames.AttachmentMeta(label=label, filename=filename, size=0, content_type=None)
    return Frame(kind, meta, download)


class Again:
    """Retry and Remix for the /animate cog: a finished job's frames into `Launcher.launch`."""

    def __init__(self, launcher: Launcher) -> None:
        self._launcher = launcher
        self._bot: SeedanceBot = launcher.bot

    async def retry(self, interaction: discord.Interaction[Any], job_id: int) -> None:
        """Run a finished job again with the same inputs, as a new job with its own charge."""
        old = await self._own_job(
            interaction, job_id, N_("Only the member who asked for this video can run it again.")
        )
        await self._again(interaction, old, old.prompt, old.resolution, old.duration, True)

    async def remix(
        self, interaction: discord.Interaction[Any], job_id: int, choice: Choice
    ) -> None:
        """A new job from a delivered one's frames, with the prompt and settings the member
        picked in the Remix form; checked and charged like any job."""
        old = await self._own_job(
            interaction, job_id, N_("Only the member who asked for this video can remix it.")
        )
        await self._again(
            interaction, old, choice.prompt, choice.resolution, choice.duration, choice.last_frame
        )

    async def _again(
        self,
        interaction: discord.Interaction[Any],
        old: JobRecord,
        prompt: str,
        resolution: str,
        duration: int,
        last_frame: bool,
    ) -> None:
        """A new job from ``old``'s frames (its last frame only when ``last_frame``)."""
        images, first_url, last_url = await self._frames_again(old)
        if not last_frame:
            images = [f for f in images if f.kind != LAST_FRAME]
            last_url = None
        new = NewJob(
            guild_id=old.guild_id,
            channel_id=old.channel_id,
            member_id=old.member_id,
            prompt=prompt,
            image_url=first_url,
            last_frame_url=last_url,
            resolution=resolution,
            duration=duration,
        )
        await self._launcher.launch(interaction, new, images)

    async def _own_job(
        self, interaction: discord.Interaction[Any], job_id: int, not_yours: str
    ) -> JobRecord:
        job = await self._bot.runner.job(job_id)
        if job is None or job.guild_id != interaction.guild_id:
            raise UserFacingError(_("This job no longer exists."))
        if interaction.user.id != job.member_id:
            raise UserFacingError(_(not_yours))
        return job

    async def _frames_again(self, job: JobRecord) -> tuple[list[Frame], str, str | None]:
        """The job's frames with URLs that work now, and those URLs (first, last).

        Discord's attachment URLs are signed and expire. The copies kept on the status message
        come back freshly signed when the message is fetched; a frame without a copy there has
        its stored URL signed anew through Discord's refresh endpoint.
        """
        kept = await self._frames_from_status(job)
        stored = {FIRST_FRAME: job.image_url, LAST_FRAME: job.last_frame_url}
        missing = [url for kind, url in stored.items() if url and kind not in kept]
        fresh = await refreshed_urls(self._bot, [u for u in missing if u is not None])
        images: list[Frame] = []
        urls: dict[str, str] = {}
        labels = {FIRST_FRAME: frames.IMAGE_LABEL, LAST_FRAME: frames.LAST_FRAME_LABEL}
        for kind, url in stored.items():
            if kind in kept:
                frame, urls[kind] = kept[kind]
                images.append(frame)
            elif url:
                urls[kind] = fresh.get(url, url)
                images.append(url_frame(self._bot, kind, labels[kind], urls[kind]))
        return images, urls[FIRST_FRAME], urls.get(LAST_FRAME)

    async def _frames_from_status(self, job: JobRecord) -> dict[str, tuple[Frame, str]]:
        """The frames kept on the job's status message, by kind, with their fresh URLs."""
        if job.status_message_id is None:
            return {}
        channel = self._bot.get_partial_messageable(job.channel_id)
        try:
            message = await channel.fetch_message(job.status_message_id)
        except discord.HTTPException as exc:
            log.info("job %d: status message unavailable for its frames: %s", job.id, exc)
            return {}
        found: dict[str, tuple[Frame, str]] = {}
        labels = {FIRST_FRAME: frames.IMAGE_LABEL, LAST_FRAME: frames.LAST_FRAME_LABEL}
        for attachment in message.attachments:
            kind = attachment.filename.split(".", 1)[0]
            if kind in labels and kind not in found:
                found[kind] = (attachment_frame(kind, labels[kind], attachment), attachment.url)
        return found
