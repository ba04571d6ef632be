"""A job's face in its channel: one status message edited by id, then the video as a new message.

`ChannelNotifier` is the Discord side's `JobNotifier`: it shows the requester their job and
nothing else (the moderators hear through the desk).
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import discord

from bot.i18n import ENGLISH, Words
from bot.jobs.notify import Delivery
from bot.media.transcode import TranscodeError, fit_video_in_turn
from bot.models import JobRecord, JobState
from cogs._i18n import guild_words
from cogs._render import clip, message_link, requester_only, settings_line, shown_text
from cogs.animate.buttons import delivered_view
from cogs.animate.pacer import ChannelPacer, Priority
from cogs.animate.status import render_status, status_embed

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
OLD_MESSAGE_EDIT_LIMIT = 30046
"""Discord's code for "too many edits to messages older than one hour"."""
OLD_MESSAGE_AGE = timedelta(minutes=55)
"""Past this, a status message is posted anew rather than edited (a margin below the hour)."""
POSTING_SETTLE = 2.0
"""Seconds a job posting its video waits before its status says so (the post is usually done)."""
CONTENT_LIMIT = 2000
EMBED_TEXT_LIMIT = 4096
UPLOAD_ATTEMPTS = 3
SEND_ATTEMPTS = 3
TRANSIENT = (aiohttp.ClientError, TimeoutError, discord.DiscordServerError)
"""Failures after which a post may or may not exist: sent again with its nonce."""
ENTITY_TOO_LARGE = 40005
# Room for the multipart envelope around an upload that must fit the limit exactly.
MULTIPART_SLACK = 64 * 1024
ON_ITS_WAY = (JobState.ACCEPTED, JobState.SUBMITTING)
"""States a status posted before its job started shows ("Sending to the video service")."""
FIRST_FRAME = "first-frame"
LAST_FRAME = "last-frame"


@dataclass(frozen=True)
class FrameCopy:
    """An accepted input frame, kept on the status message so its URL can be re-signed later."""

    filename: str
    data: bytes


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


class ChannelNotifier:
    """Implements `JobNotifier` for one job: sparse status edits and the delivery."""

    def __init__(
        self,
        bot: SeedanceBot,
        *,
        channel_id: int,
        status_message_id: int | None,
        upload_limit: int,
        pacer: ChannelPacer,
    ) -> None:
        self._bot = bot
        self._pacer = pacer
        self._channel_id = channel_id
        self._message_id = status_message_id
        self._upload_limit = upload_limit
        self._interval = bot.config.discord.status_edit_interval
        self._lock = asyncio.Lock()
        self._last_edit = float("-inf")
        self._on_its_way = False
        """The status was posted before the job was sent to the video service, and shows it
        on its way there: its next state goes up at once, not an interval later."""
        self._last_shown: dict[str, object] | None = None
        self._shown_title: str | None = None
        self._thumbnail: str | None = None
        self._told_privately = False
        self._newest: tuple[JobRecord, str, discord.Embed, discord.ui.View | None] | None = None
        """While the first post waits for its turn: the job as it is now, rendered."""

    def _channel(self) -> discord.PartialMessageable:
        return self._bot.get_partial_messageable(self._channel_id)

    def _words(self, job: JobRecord) -> Words:
        """A job's messages are public: in the server's language."""
        return guild_words(self._bot, job.guild_id)

    async def post_status(
        self, job: JobRecord, copies: list[FrameCopy] | None = None, *, settle: float = 0.0
    ) -> discord.Message:
        """Post the first status message; raises `discord.HTTPException` when it cannot.

        The post waits for its turn in the channel's budget, and shows the job as it is when
        the turn comes: a change meanwhile (the job may run before its status is up) is
        posted rather than edited in a moment later. With ``settle``, a job just started
        waits that long at most for its first change (its submission), so that its status
        is posted once, as it then stands. The input frames go along as attachments when
        they fit the upload limit: the embed's thumbnail then never expires, and Retry can
        re-sign their URLs by fetching the message.
        """
        self._newest = (job, *render_status(job, await self._embed(job), self._words(job)))
        kept = [c for c in copies or [] if len(c.data) <= self._upload_limit]
        if sum(len(c.data) for c in kept) > self._upload_limit:
            kept = kept[:1]
        sent: list[tuple[JobRecord, discord.Embed]] = []

        def send() -> Awaitable[discord.Message]:
            assert self._newest is not None
            shown, content, embed, view = self._newest
            if kept:
                embed = embed.copy()
                embed.set_thumbnail(url=f"attachment://{kept[0].filename}")
            sent.append((shown, embed))
            # Fresh files each time: a send closes the ones it was given.
            files = [discord.File(io.BytesIO(c.data), filename=c.filename) for c in kept]
            return self._channel().send(
                content,
                embed=embed,
                files=files or discord.utils.MISSING,
                view=view or discord.utils.MISSING,
                allowed_mentions=discord.AllowedMentions.none(),
                nonce=f"status-{job.id}",
            )

        try:
            not_before = asyncio.get_running_loop().time() + settle if settle > 0 else 0.0
            message = await self._send_once(
                job, send, key=("status post", job.id), not_before=not_before
            )
        finally:
            newest, self._newest = self._newest, None
        shown, embed = sent[-1]
        self._message_id = message.id
        if message.attachments:
            self._thumbnail = message.attachments[0].url
        self._last_edit = asyncio.get_running_loop().time()
        self._on_its_way = shown.state in ON_ITS_WAY
        if self._thumbnail:
            # As Discord shows it: the attachment's own URL.
            embed.set_thumbnail(url=self._thumbnail)
        self._last_shown = embed.to_dict()  # type: ignore[assignment]
        self._shown_title = embed.title
        if newest is not None and newest[0] is not shown:
            # It changed while the post was on its way.
            await self.job_changed(newest[0])
        elif shown.state.is_terminal:
            await self._shown(shown)
        return message

    def show_soon(self, job: JobRecord) -> None:
        """The first post of ``job`` need wait for no change: it goes when the budget allows."""
        self._pacer.hurry(("status post", job.id))

    async def _send_once(
        self,
        job: JobRecord,
        send: Callable[[], Awaitable[discord.Message]],
        *,
        key: tuple[str, int] | None = None,
        not_before: float = 0.0,
    ) -> discord.Message:
        """Post through the channel's budget; a dropped connection, a timeout or a 5xx is
        tried again with the same nonce, which Discord answers with the message it already
        made (if the lost attempt made one) instead of a second copy."""
        key = key or ("post", job.id)
        for attempt in range(SEND_ATTEMPTS - 1):
            try:
                message: discord.Message = await self._pacer.run(key, send, not_before=not_before)
                return message
            except TRANSIENT as exc:
                log.info("job %d: post failed (%r); sending again with its nonce", job.id, exc)
                await asyncio.sleep(0.5 * 2**attempt)
        message = await self._pacer.run(key, send)
        return message

    async def _embed(self, job: JobRecord) -> discord.Embed:
        runner = self._bot.runner
        jump = None
        if job.result_message_id:
            jump = message_link(job.guild_id, job.channel_id, job.result_message_id)
        embed = status_embed(
            job,
            expected_finish=await runner.expected_finish(job),
            result_jump_url=jump,
            slot_position=runner.slot_position(job.id),
            t=self._words(job),
        )
        if self._thumbnail:
            embed.set_thumbnail(url=self._thumbnail)
        return embed

    # -- JobNotifier -----------------------------------------------------------------------

    async def job_changed(self, job: JobRecord) -> None:
        """Render the job's newest state and queue it for its status message.

        Rendered now, so the paced edit itself only sends: a request the bot-wide budget lets
        through leaves at once. A final state goes first and is tried until it shows; a new
        state goes before mere progress (a queue position) when the budget is short; both
        wait for the job's own interval.
        """
        content, embed, view = render_status(job, await self._embed(job), self._words(job))
        if self._newest is not None:
            # The first post is still waiting for its turn: it will show this, and need wait
            # for nothing else now.
            self._newest = (job, content, embed, view)
            self._pacer.hurry(("status post", job.id))
            return
        if job.state.is_terminal or job.state is JobState.UNKNOWN_SUBMISSION:
            priority, not_before = Priority.FINAL, 0.0
        elif embed.to_dict() == self._last_shown:
            # Nothing new to show (an edit still queued would show something older).
            self._pacer.drop(("status", job.id))
            return
        else:
            # A new headline is news; the same one with new details (a queue position) is
            # progress, the first to give way.
            changed = embed.title != self._shown_title
            priority = Priority.CHANGE if changed else Priority.PROGRESS
            not_before = self._last_edit + self._interval
            if changed and self._on_its_way:
                # Posted before its job started (the first in a channel): the interval keeps
                # two edits apart, and the member waits for the outcome of the sending.
                not_before = 0.0
            if job.state is JobState.DELIVERING:
                # Usually over in a moment: the video's post then shows the job delivered.
                not_before = max(not_before, asyncio.get_running_loop().time() + POSTING_SETTLE)
        self._pacer.submit(
            ("status", job.id),
            lambda: self._edit(job, content, embed, view),
            priority=priority,
            not_before=not_before,
        )

    async def _edit(
        self, job: JobRecord, content: str, embed: discord.Embed, view: discord.ui.View | None
    ) -> None:
        async with self._lock:
            shown = embed.to_dict()
            if shown == self._last_shown:
                return
            self._last_shown = shown  # type: ignore[assignment]
            self._shown_title = embed.title
            self._last_edit = asyncio.get_running_loop().time()
            self._on_its_way = False
            if self._message_id is None:
                # Never shown, or its post's answer was lost before a restart: the same nonce
                # as the first post gets that message back rather than a second one.
                await self._repost(job, content, embed, view, nonce=f"status-{job.id}")
                return
            message = self._channel().get_partial_message(self._message_id)
            age = discord.utils.utcnow() - discord.utils.snowflake_time(self._message_id)
            if age > OLD_MESSAGE_AGE:
                # Discord caps edits to messages over an hour old: show the job anew instead.
                await self._replace(job, message, content, embed, view)
                return
            try:
                await message.edit(content=content, embed=embed, view=view)
                await self._shown(job)
            except discord.NotFound:
                log.info("job %d: status message was deleted; posting a new one", job.id)
                await self._repost(job, content, embed, view)
            except discord.Forbidden as exc:
                log.warning("job %d: no permission to edit the status message: %s", job.id, exc)
                await self._tell_privately(job, embed)
            except discord.HTTPException as exc:
                if exc.code == OLD_MESSAGE_EDIT_LIMIT:
                    # Discord caps edits to messages older than an hour: show it anew.
                    log.info("job %d: status message too old to edit; posting a new one", job.id)
                    await self._replace(job, message, content, embed, view)
                    return
                # Shown again on the next change; a final state is tried again by the pacer.
                self._last_shown = None
                raise

    def told_privately(self) -> None:
        """The member was told of the job's end privately already (the answer to their
        command): a channel that refuses the bot sends them no DM about it."""
        self._told_privately = True

    async def _tell_privately(self, job: JobRecord, embed: discord.Embed) -> None:
        """The channel is closed to the bot: tell the member the outcome by DM, once."""
        if not (job.state.is_terminal or job.state is JobState.UNKNOWN_SUBMISSION):
            return
        if self._told_privately:
            return
        self._told_privately = True
        t = self._words(job)
        text = t(
            "I lost permission to post in {channel}, so I can't show your video job there. "
            "Here is where it stands:",
            channel=f"<#{job.channel_id}>",
        )
        try:
            user = await self._bot.fetch_user(job.member_id)
            await user.send(text, embed=embed, allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException as exc:
            log.warning("job %d: could not DM member %d either: %s", job.id, job.member_id, exc)

    async def _replace(
        self,
        job: JobRecord,
        old: discord.PartialMessage,
        content: str,
        embed: discord.Embed,
        view: discord.ui.View | None,
    ) -> None:
        await self._repost(job, content, embed, view)
        try:
            await old.delete()
        except discord.HTTPException as exc:
            log.info("job %d: the old status message stays: %s", job.id, exc)

    async def _shown(self, job: JobRecord) -> None:
        if job.state.is_terminal:
            await self._bot.runner.final_shown(job.id)

    async def _repost(
        self,
        job: JobRecord,
        content: str,
        embed: discord.Embed,
        view: discord.ui.View | None,
        *,
        nonce: str | None = None,
    ) -> None:
        try:
            message = await self._channel().send(
                content,
                embed=embed,
                view=view or discord.utils.MISSING,
                allowed_mentions=discord.AllowedMentions.none(),
                # A fresh nonce for a new status message: Discord dedupes within minutes.
                nonce=nonce or f"re{job.id}-{secrets.token_hex(3)}",
            )
        except discord.Forbidden as exc:
            log.warning("job %d: no permission to post a status message: %s", job.id, exc)
            await self._tell_privately(job, embed)
            return
        except discord.HTTPException as exc:
            log.warning("job %d: could not post a status message: %s", job.id, exc)
            return
        self._message_id = message.id
        await self._bot.runner.shown_at(job.id, message.id)
        earlier = [e.title for e in message.embeds] != [embed.title]
        if nonce is not None and earlier:
            # Discord gave back the earlier post, as it was then: show the job as it is now.
            await message.edit(content=content, embed=embed, view=view)
        await self._shown(job)

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
        message = await self._send_once(
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
