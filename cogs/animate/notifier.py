"""A job's face in its channel: one status message edited by id, then the video as a new message.

`ChannelNotifier` is the Discord side's `JobNotifier`: it shows the requester their job and
nothing else (the moderators hear through the desk).
"""

from __future__ import annotations

import asyncio
import io
import logging
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import discord

from bot.i18n import Words
from bot.jobs.notify import Delivery, PostRefused
from bot.models import JobRecord, JobState
from cogs._i18n import guild_words
from cogs._render import message_link
from cogs.animate.delivery import VideoPost, send_once
from cogs.animate.pacer import ChannelPacer, Priority
from cogs.animate.status import render_status, status_embed

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)

OLD_MESSAGE_EDIT_LIMIT = 30046
"""Discord's code for "too many edits to messages older than one hour"."""
OLD_MESSAGE_AGE = timedelta(minutes=55)
"""Past this, a status message is posted anew rather than edited (a margin below the hour)."""
POSTING_SETTLE = 2.0
"""Seconds a job posting its video waits before its status says so (the post is usually done)."""
ON_ITS_WAY = (JobState.ACCEPTED, JobState.SUBMITTING)
"""States a status posted before its job started shows ("Sending to the video service")."""
FIRST_LOOK = 0.5
"""Seconds a status about to show a job just sent waits for the provider's first answer (its
place in line, asked at once): it then shows the place, rather than being edited for it a
moment later."""
FIRST_FRAME = "first-frame"
LAST_FRAME = "last-frame"


@dataclass(frozen=True)
class FrameCopy:
    """An accepted input frame, kept on the status message so its URL can be re-signed later."""

    filename: str
    data: bytes


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
        self._video = VideoPost(
            self._channel, pacer=pacer, upload_limit=upload_limit, words=self._words
        )
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
            message = await send_once(
                self._pacer, job, send, key=("status post", job.id), not_before=not_before
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
            self._pacer.hurry(("status post", job.id), within=_first_look(job))
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
                not_before = asyncio.get_running_loop().time() + _first_look(job)
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

    def told_privately(self, told: bool = True) -> None:
        """The member was told of the job's end privately already (the answer to their
        command): a channel that refuses the bot sends them no DM about it."""
        self._told_privately = told

    async def _tell_privately(
        self, job: JobRecord, embed: discord.Embed, *, gone: bool = False
    ) -> None:
        """The channel is closed to the bot (``gone``: deleted): tell the member the outcome
        by DM, once.

        A job's ending told this way (or that cannot be told at all) counts as shown: no
        later start tries the closed channel again, nor sends the DM again."""
        if not (job.state.is_terminal or job.state is JobState.UNKNOWN_SUBMISSION):
            return
        if not self._told_privately:
            self._told_privately = True
            await self._dm(job, embed, gone=gone)
        await self._shown(job)

    async def _dm(self, job: JobRecord, embed: discord.Embed, *, gone: bool) -> None:
        t = self._words(job)
        if gone:
            text = t(
                "The channel where you asked for this video was deleted, so I can't show your "
                "video job there. Here is where it stands:"
            )
        else:
            text = t(
                "I lost permission to post in {channel}, so I can't show your video job "
                "there. Here is where it stands:",
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
        except discord.NotFound as exc:
            log.warning("job %d: its channel is gone: %s", job.id, exc)
            await self._tell_privately(job, embed, gone=True)
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
        """Post the video (see `VideoPost.deliver`); `PostRefused` when the channel will not
        take it at all (no access, or gone)."""
        try:
            return await self._video.deliver(job, delivery)
        except (discord.Forbidden, discord.NotFound) as exc:
            raise PostRefused(str(exc)) from exc

    async def find_delivery(self, job: JobRecord) -> int | None:
        """The video's post, if an earlier attempt made it (see `VideoPost.find_delivery`)."""
        return await self._video.find_delivery(job)


def _first_look(job: JobRecord) -> float:
    """How long a status about to show ``job`` may wait for its next news: a job just queued
    at the provider has its place in line a moment later (see `FIRST_LOOK`)."""
    return FIRST_LOOK if job.state is JobState.QUEUED and job.queue_position is None else 0.0
