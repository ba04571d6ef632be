"""Requests no moderator answered: ended after `[quota] approval_hours`, and everyone told.

Discord's attachment links expire after a day, so a request must not wait longer than that:
an approved job still has to fetch its image. Every process sweeps; the store ends each
request once, and only the process that ended it tells people.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

import discord

from bot.i18n import _
from bot.models import ApprovalRequest
from cogs._i18n import guild_words
from cogs._render import requester_only

if TYPE_CHECKING:
    from bot.app import SeedanceBot
    from cogs.moderation.desk import ModLogDesk

log = logging.getLogger(__name__)

LONGEST_PAUSE = 300.0
"""Seconds between two sweeps at most: a request ends at most this late."""


def sweep_interval(max_age: timedelta) -> float:
    """A quarter of the allowed wait, between 0.2 s and five minutes."""
    return min(LONGEST_PAUSE, max(0.2, max_age.total_seconds() / 4))


class ApprovalExpiry:
    """Ends requests that waited too long and tells the requester and the moderators."""

    def __init__(self, bot: SeedanceBot, desk: ModLogDesk) -> None:
        self.bot = bot
        self.desk = desk
        self.max_age = timedelta(hours=bot.config.quota.approval_hours)

    async def run(self) -> None:
        """Sweep forever (a tracked task of the moderation cog)."""
        while True:
            await asyncio.sleep(sweep_interval(self.max_age))
            try:
                await self.sweep()
            except Exception:
                log.exception("expiring approval requests failed")

    async def sweep(self) -> int:
        """End every request older than the allowed wait now; how many ended."""
        ended = await self.bot.guild_admin.expire_approvals(self.max_age)
        for request in ended:
            try:
                await self._tell(request)
            except Exception:
                log.exception("job %d: telling people of its expiry failed", request.job.id)
        return len(ended)

    async def _tell(self, request: ApprovalRequest) -> None:
        job = request.job
        self.bot.runner.forget(job.id)
        hours = f"{self.max_age.total_seconds() / 3600:g}"
        await self.desk.approval_ended(
            request,
            _(
                "⌛ Expired: no moderator answered within {hours} h. Nothing was charged.",
                hours=hours,
            ),
        )
        if self.bot.notifier_for is not None:
            await self.bot.notifier_for(job).job_changed(job)
        t = guild_words(self.bot, job.guild_id)
        try:
            await self.bot.get_partial_messageable(job.channel_id).send(
                t(
                    "{member} no moderator answered your video request in time, so it was "
                    "dropped. Nothing was charged.",
                    member=f"<@{job.member_id}>",
                ),
                allowed_mentions=requester_only(job.member_id),
            )
        except discord.HTTPException as exc:
            log.info("job %d: could not tell the member about the expiry: %s", job.id, exc)
