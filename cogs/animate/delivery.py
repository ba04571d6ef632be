"""A job's video in its channel: the file, re-encoded to fit when it must, else its link.

`VideoPost` is the delivery half of a job's `ChannelNotifier`: it posts within the channel's
budget (`ChannelPacer`), with a nonce, so a post whose answer was lost is never made twice.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import discord

from bot.i18n import ENGLISH, Words
from bot.jobs.notify import Delivery
from bot.media.transcode import TranscodeError, fit_video_in_turn
from bot.models import JobRecord
from cogs._render import clip, requester_only, settings_line, shown_text
from cogs.animate.buttons import delivered_view
from cogs.animate.pacer import ChannelPacer

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
CONTENT_LIMIT = 2000
EMBED_TEXT_LIMIT = 4096
UPLOAD_ATTEMPTS = 3
SEND_ATTEMPTS = 3
TRANSIENT = (aiohttp.ClientError, TimeoutError, discord.DiscordServerError)
"""Failures after which a post may or may not exist: sent again with its nonce."""
ENTITY_TOO_LARGE = 40005
# Room for the multipart envelope around an upload that must fit the limit exactly.
MULTIPART_SLACK = 64 * 1024


def delivery_embed(job: JobRecord, t: Words = ENGLISH) -> discord.Embed:
    """What the video was made from: the prompt as plain text, and the settings."""
    embed = discord.Embed(
        description=shown_text(job.prompt, 3000),
        colour=discord.Colour.green(),
    )
    embed.set_footer(text=settings_line(job, t))
    return embed


def mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


async def send_once(
    pacer: ChannelPacer,
    job: JobRecord,
    send: Callable[[], Awaitable[discord.Message]],
    *,
    key: tuple[str, int] | None = None,
    not_before: float = 0.0,
) -> discord.Message:
    """Post through the channel's budget; a dropped connection, a timeout or a 5xx is tried
    again with the same nonce, which Discord answers with the message it already made (if the
    lost attempt made one) instead of a second copy."""
    key = key or ("post", job.id)
    for attempt in range(SEND_ATTEMPTS - 1):
        try:
            message: discord.Message = await pacer.run(key, send, not_before=not_before)
            return message
        except TRANSIENT as exc:
            log.info("job %d: post failed (%r); sending again with its nonce", job.id, exc)
            await asyncio.sleep(0.5 * 2**attempt)
    message = await pacer.run(key, send)
    return message


class VideoPost:
    """Posts a job's video in its channel, within the channel's budget, in its server's words."""

    def __init__(
        self,
        channel: Callable[[], discord.PartialMessageable],
        *,
        pacer: ChannelPacer,
        upload_limit: int,
        words: Callable[[JobRecord], Words],
    ) -> None:
        self._channel = channel
        self._pacer = pacer
        self._upload_limit = upload_limit
        self._words = words

    async def deliver(self, job: JobRecord, delivery: Delivery) -> int | None:
        """Post the video as a file, re-encoded to fit the channel if needed, else its link.

        The prompt travels in an embed as plain text, so the message stays within Discord's
        limits whatever its length. A refused upload other than "too large" is tried again,
        then the link is posted instead: a made video is never thrown away.
        """
        channel = self._channel()
        t = self._words(job)
        head = t("{member} your video is ready!", member=f"<@{job.member_id}>")
        embed = delivery_embed(job, t)
        mentions = requester_only(job.member_id)
        nonce = f"video-{job.id}"
        why = (
            t("The video could not be fetched to upload here")
            if delivery.cut
            else t("The video is too large to fetch and upload here")
        )
        if delivery.file is not None and delivery.size is not None:
            why = t(
                "The video is {size}, over this channel's upload limit of {limit}, and could "
                "not be made to fit",
                size=mib(delivery.size),
                limit=mib(self._upload_limit),
            )
            async for path, note in self._upload_ladder(job, delivery.file, delivery.size, t):
                for attempt in range(UPLOAD_ATTEMPTS):
                    try:
                        message = await self._pacer.run(
                            ("post", job.id),
                            functools.partial(
                                channel.send,
                                head + note,
                                embed=embed,
                                file=discord.File(path, filename=f"seedance-{job.id}.mp4"),
                                view=delivered_view(job.id, t),
                                allowed_mentions=mentions,
                                nonce=nonce,
                            ),
                        )
                        return int(message.id)
                    except TRANSIENT as exc:
                        # Discord may have made the post: the next try's nonce finds it.
                        log.warning("job %d: upload cut (%r), attempt %d", job.id, exc, attempt)
                        await asyncio.sleep(2.0**attempt)
                    except discord.HTTPException as exc:
                        if exc.status == 413 or exc.code == ENTITY_TOO_LARGE:
                            log.info("job %d: upload of %s refused as too large", job.id, path.name)
                            break
                        if exc.status in (400, 403, 404):
                            # Discord will not take this post at all: the link won't do better.
                            raise
                        log.warning("job %d: upload failed (%s), attempt %d", job.id, exc, attempt)
                        await asyncio.sleep(2.0**attempt)
                else:
                    why = t("The upload kept failing")
                    break
        link = t(
            "{why}, so here is the link (it may expire): {url}", why=why, url=delivery.video_url
        )
        if len(head) + 1 + len(link) <= CONTENT_LIMIT:
            content = f"{head}\n{link}"
        else:
            content = head
            embed.description = clip(f"{embed.description}\n\n{link}", EMBED_TEXT_LIMIT)
        message = await send_once(
            self._pacer,
            job,
            functools.partial(
                channel.send,
                content,
                embed=embed,
                view=delivered_view(job.id, t),
                allowed_mentions=mentions,
                nonce=nonce,
            ),
        )
        return int(message.id)

    async def find_delivery(self, job: JobRecord) -> int | None:
        """The video's post, if an earlier attempt made it: the channel's messages after the
        status message that carry this job's Retry button."""
        after = discord.Object(job.status_message_id) if job.status_message_id else None
        wanted = f"job:retry:{job.id}"
        try:
            async for message in self._channel().history(limit=100, after=after):
                for row in message.components:
                    for item in getattr(row, "children", []):
                        if getattr(item, "custom_id", None) == wanted:
                            return message.id
        except discord.HTTPException as exc:
            # Unknown: posting again is better than never delivering.
            log.warning("job %d: could not look for an earlier post: %s", job.id, exc)
        return None

    async def _upload_ladder(
        self, job: JobRecord, file: Path, size: int, t: Words
    ) -> AsyncIterator[tuple[Path, str]]:
        """The files to try in turn: the original when it fits, then a re-encoded copy.

        The copy is only made when needed: the original is too large, or Discord refused it.
        """
        target = self._upload_limit - MULTIPART_SLACK
        if size <= self._upload_limit:
            yield file, ""
            target = min(target, int(size * 0.9))
        if target < MULTIPART_SLACK:
            return  # no playable video fits in so little
        fitted = file.with_name(f"{file.stem}-fit.mp4")
        try:
            fitted_size = await fit_video_in_turn(file, fitted, limit_bytes=target)
        except TranscodeError as exc:
            log.info("job %d: could not fit %s under %d bytes: %s", job.id, mib(size), target, exc)
            return
        log.info("job %d: re-encoded %s to %s to fit", job.id, mib(size), mib(fitted_size))
        yield (
            fitted,
            "\n" + t("(re-encoded from {size} to fit this channel's upload limit)", size=mib(size)),
        )
