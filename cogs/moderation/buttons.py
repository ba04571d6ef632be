"""Approve / Deny on an over-cap request in the mod-log; moderators only, this server only.

Deny opens a small form for an optional reason, which the requester then reads in their job's
end message and the mod-log keeps.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

import discord

from bot.errors import JobNotFound, QuotaExceeded
from bot.jobs.notify import CancelResult
from bot.models import JobRecord, JobState, QuotaRefusal
from cogs._render import PERIOD_WORD, clip, credits, requester_only, shown_line, without_controls
from cogs._tree import UNEXPECTED, reply_ephemeral
from cogs.animate.buttons import JobButton

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)


def approval_refusal(refusal: QuotaRefusal) -> str:
    """Why an approval cannot run now; the request keeps waiting."""
    if refusal.reason == "server_concurrent":
        return (
            f"This server already has {refusal.active_server} video(s) in progress, the most "
            "allowed at once. The request is still waiting: approve it again when one finishes."
        )
    left = max(0, refusal.server_limit - refusal.server_used)
    return (
        f"The server's pool has {credits(left)} left {PERIOD_WORD[refusal.period]}, not enough "
        f"for this video ({credits(refusal.cost)}). The request is still waiting."
    )


REASON_MAX = 300
"""The longest denial reason kept (the form's limit too)."""


def clean_reason(text: str | None) -> str | None:
    """A moderator's reason as stored: one trimmed line at most ``REASON_MAX`` long, or None."""
    if text is None:
        return None
    cleaned = " ".join(without_controls(text).split())
    return clip(cleaned, REASON_MAX) or None


async def decide(
    interaction: discord.Interaction[Any],
    job: JobRecord,
    *,
    approve: bool,
    reason: str | None = None,
) -> str:
    """A moderator's Approve / Deny on an over-cap request; returns what they are told.

    ``reason`` (a denial's, already cleaned) reaches the requester and the mod-log.
    """
    bot = cast("SeedanceBot", interaction.client)
    assert interaction.guild_id is not None
    if bot.notifier_for is None:
        return "Videos are not available right now."
    moderator = interaction.user.id
    if job.state is not JobState.PENDING_APPROVAL:
        return "This request was already decided, or withdrawn."
    if approve:
        try:
            request = await bot.guild_admin.approve(interaction.guild_id, job.id, by=moderator)
        except JobNotFound:
            return "This request no longer exists."
        except QuotaExceeded as exc:
            return approval_refusal(exc.refusal)
        if not request.changed:
            return "This request was already decided, or withdrawn."
        job = request.job
    else:
        # Through the runner, which also stops watching the request for its status message.
        result = await bot.runner.cancel(
            job.id, actor_id=moderator, is_moderator=True, reason=reason
        )
        if result is not CancelResult.CANCELLED:
            return "This request was already decided, or withdrawn."
    verdict = "Approved" if approve else "Denied"
    because = "."
    if reason and not approve:
        shown = shown_line(reason, REASON_MAX + 100)
        because = f": {shown}" + ("" if shown.endswith((".", "!", "?")) else ".")
    if interaction.message is not None:
        try:
            await interaction.message.edit(
                content=f"{verdict} by <@{moderator}>{because}",
                view=None,
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as exc:
            log.info("job %d: could not mark the approval message: %s", job.id, exc)
    if approve:
        await bot.runner.start(job, bot.notifier_for(job))
        return "Approved: the video is being made on the server's pool."
    try:
        await bot.get_partial_messageable(job.channel_id).send(
            f"<@{job.member_id}> a moderator declined your video request{because} "
            "Nothing was charged.",
            allowed_mentions=requester_only(job.member_id),
        )
    except discord.HTTPException as exc:
        log.info("job %d: could not tell the member about the denial: %s", job.id, exc)
    return "Denied: the member was told and nothing was charged."


class DenyForm(discord.ui.Modal, title="Deny this video request"):
    """The reason for a denial, optional; the requester and the mod-log see it."""

    reason: discord.ui.Label[DenyForm] = discord.ui.Label(
        text="Reason (optional)",
        description="The member reads it with the denial.",
        component=discord.ui.TextInput(
            custom_id="deny:reason",
            style=discord.TextStyle.paragraph,
            required=False,
            max_length=REASON_MAX,
            placeholder="e.g. Please keep requests within your own credits this week.",
        ),
    )

    def __init__(self, job_id: int) -> None:
        super().__init__(custom_id=f"approval:deny-form:{job_id}", timeout=15 * 60)
        self.job_id = job_id

    @property
    def text(self) -> str | None:
        field = self.reason.component
        assert isinstance(field, discord.ui.TextInput)
        return clean_reason(field.value)

    async def on_submit(self, interaction: discord.Interaction[Any], /) -> None:
        if not interaction.permissions.manage_guild:
            await reply_ephemeral(interaction, "Only moderators (Manage Server) can decide this.")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        bot = cast("SeedanceBot", interaction.client)
        job = await bot.runner.job(self.job_id)
        if job is None or job.guild_id != interaction.guild_id:
            await reply_ephemeral(interaction, "This request no longer exists.")
            return
        await reply_ephemeral(
            interaction, await decide(interaction, job, approve=False, reason=self.text)
        )

    async def on_error(  # type: ignore[override]  # Modal's own signature
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        log.error("job %d: the denial failed", self.job_id, exc_info=error)
        await reply_ephemeral(interaction, UNEXPECTED)


class _Decision(JobButton, template=r"$^"):
    """Approve or deny an over-cap request from the mod-log; moderators only."""

    prefix = "approval"
    approve = True

    async def message_of(self, bot: SeedanceBot, job: JobRecord) -> int | None:
        request = await bot.guild_admin.approval(job.id)
        return request.approval.message_id if request is not None else None

    async def act(self, interaction: discord.Interaction[Any], job: JobRecord) -> None:
        if not interaction.permissions.manage_guild:
            await reply_ephemeral(interaction, "Only moderators (Manage Server) can decide this.")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        await reply_ephemeral(interaction, await decide(interaction, job, approve=self.approve))


class ApproveButton(_Decision, template=r"approval:approve:(?P<job_id>[0-9]+)"):
    action, label, style, approve = "approve", "Approve", discord.ButtonStyle.success, True


class DenyButton(_Decision, template=r"approval:deny:(?P<job_id>[0-9]+)"):
    """Deny opens a form for the reason first; the form's submission decides."""

    action, label, style, approve = "deny", "Deny", discord.ButtonStyle.danger, False

    async def act(self, interaction: discord.Interaction[Any], job: JobRecord) -> None:
        if not interaction.permissions.manage_guild:
            await reply_ephemeral(interaction, "Only moderators (Manage Server) can decide this.")
            return
        if job.state is not JobState.PENDING_APPROVAL:
            await reply_ephemeral(interaction, "This request was already decided, or withdrawn.")
            return
        # A form can only be the first answer to a click: no defer before it.
        await interaction.response.send_modal(DenyForm(job.id))


def approval_view(job_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(ApproveButton(job_id))
    view.add_item(DenyButton(job_id))
    return view
