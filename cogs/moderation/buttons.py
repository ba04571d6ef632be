"""Approve / Deny on an over-cap request in the mod-log; moderators only, this server only.

Deny opens a small form for an optional reason, which the requester then reads in their job's
end message and the mod-log keeps.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

import discord

from bot.errors import JobNotFound, QuotaExceeded
from bot.i18n import ENGLISH, N_, Text, Words, _, _n
from bot.jobs.notify import CancelResult
from bot.models import JobRecord, JobState, QuotaRefusal
from cogs._i18n import private_words, public_words
from cogs._render import PERIOD_WORD, clip, requester_only, shown_line, without_controls
from cogs._tree import UNEXPECTED, answering, reply_ephemeral
from cogs.animate.buttons import JobButton

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)


def approval_refusal(refusal: QuotaRefusal) -> Text:
    """Why an approval cannot run now; the request keeps waiting."""
    if refusal.reason == "server_concurrent":
        return _(
            "This server already has {count} video(s) in progress, the most allowed at once. "
            "The request is still waiting: approve it again when one finishes.",
            count=refusal.active_server,
        )
    left = max(0, refusal.server_limit - refusal.server_used)
    return _(
        "The server's pool has {left} left {period}, not enough for this video ({cost}). "
        "The request is still waiting.",
        left=_n("{count} credit", "{count} credits", left),
        period=_(PERIOD_WORD[refusal.period]),
        cost=_n("{count} credit", "{count} credits", refusal.cost),
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
) -> Text:
    """A moderator's Approve / Deny on an over-cap request; returns what they are told.

    ``reason`` (a denial's, already cleaned) reaches the requester and the mod-log.
    """
    bot = cast("SeedanceBot", interaction.client)
    assert interaction.guild_id is not None
    if bot.notifier_for is None:
        return _("Videos are not available right now.")
    moderator = interaction.user.id
    if job.state is not JobState.PENDING_APPROVAL:
        return _(DECIDED)
    if approve:
        try:
            request = await bot.guild_admin.approve(interaction.guild_id, job.id, by=moderator)
        except JobNotFound:
            return _("This request no longer exists.")
        except QuotaExceeded as exc:
            return approval_refusal(exc.refusal)
        if not request.changed:
            return _(DECIDED)
        job = request.job
    else:
        # Through the runner, which also stops watching the request for its status message.
        result = await bot.runner.cancel(
            job.id, actor_id=moderator, is_moderator=True, reason=reason
        )
        if result is not CancelResult.CANCELLED:
            return _(DECIDED)
    # The mod-log and the channel are public: in the server's language.
    t = public_words(interaction)
    verdict = (
        N_("Approved by {moderator}{because}") if approve else N_("Denied by {moderator}{because}")
    )
    because = "."
    if reason and not approve:
        shown = shown_line(reason, REASON_MAX + 100)
        because = f": {shown}" + ("" if shown.endswith((".", "!", "?")) else ".")
    if interaction.message is not None:
        try:
            await interaction.message.edit(
                content=t(verdict, moderator=f"<@{moderator}>", because=because),
                view=None,
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as exc:
            log.info("job %d: could not mark the approval message: %s", job.id, exc)
    if approve:
        await bot.runner.start(job, bot.notifier_for(job))
        return _("Approved: the video is being made on the server's pool.")
    try:
        await bot.get_partial_messageable(job.channel_id).send(
            t(
                "{member} a moderator declined your video request{because} Nothing was charged.",
                member=f"<@{job.member_id}>",
                because=because,
            ),
            allowed_mentions=requester_only(job.member_id),
        )
    except discord.HTTPException as exc:
        log.info("job %d: could not tell the member about the denial: %s", job.id, exc)
    return _("Denied: the member was told and nothing was charged.")


DECIDED = N_("This request was already decided, or withdrawn.")
MODERATORS_ONLY = N_("Only moderators (Manage Server) can decide this.")


class DenyForm(discord.ui.Modal, title="Deny this video request"):
    """The reason for a denial, optional; the requester and the mod-log see it. Worded in
    the moderator's language."""

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

    def __init__(self, job_id: int, t: Words = ENGLISH) -> None:
        super().__init__(
            title=t("Deny this video request"),
            custom_id=f"approval:deny-form:{job_id}",
            timeout=15 * 60,
        )
        self.job_id = job_id
        self.reason.text = t("Reason (optional)")
        self.reason.description = t("The member reads it with the denial.")
        field = self.reason.component
        assert isinstance(field, discord.ui.TextInput)
        field.placeholder = t("e.g. Please keep requests within your own credits this week.")

    @property
    def text(self) -> str | None:
        field = self.reason.component
        assert isinstance(field, discord.ui.TextInput)
        return clean_reason(field.value)

    async def on_submit(self, interaction: discord.Interaction[Any], /) -> None:
        answering(interaction)
        if not interaction.permissions.manage_guild:
            await reply_ephemeral(interaction, _(MODERATORS_ONLY))
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        bot = cast("SeedanceBot", interaction.client)
        job = await bot.runner.job(self.job_id)
        if job is None or job.guild_id != interaction.guild_id:
            await reply_ephemeral(interaction, _("This request no longer exists."))
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
            await reply_ephemeral(interaction, _(MODERATORS_ONLY))
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        await reply_ephemeral(interaction, await decide(interaction, job, approve=self.approve))


class ApproveButton(_Decision, template=r"approval:approve:(?P<job_id>[0-9]+)"):
    action, label, style, approve = "approve", N_("Approve"), discord.ButtonStyle.success, True


class DenyButton(_Decision, template=r"approval:deny:(?P<job_id>[0-9]+)"):
    """Deny opens a form for the reason first; the form's submission decides."""

    action, label, style, approve = "deny", N_("Deny"), discord.ButtonStyle.danger, False

    async def act(self, interaction: discord.Interaction[Any], job: JobRecord) -> None:
        if not interaction.permissions.manage_guild:
            await reply_ephemeral(interaction, _(MODERATORS_ONLY))
            return
        if job.state is not JobState.PENDING_APPROVAL:
            await reply_ephemeral(interaction, _(DECIDED))
            return
        # A form can only be the first answer to a click: no defer before it.
        await interaction.response.send_modal(DenyForm(job.id, private_words(interaction)))


def approval_view(job_id: int, t: Words = ENGLISH) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(ApproveButton(job_id, t))
    view.add_item(DenyButton(job_id, t))
    return view
