"""Request gates: paused, banned, wrong channel, blocked prompt; refused before any charge."""

from __future__ import annotations

from typing import Literal

from bot.errors import GateClosed, UserFacingError
from bot.i18n import N_, Text, _
from bot.models import BlockRule, GuildSettings

GateReason = Literal["paused", "banned", "channel", "blocked", "unchecked"]


def closed_gate(
    settings: GuildSettings, *, banned: bool, channel_id: int, parent_id: int | None
) -> GateReason | None:
    """The first gate that refuses the request, in the order paused, banned, channel; or None."""
    if settings.paused:
        return "paused"
    if banned:
        return "banned"
    if not settings.channel_allowed(channel_id, parent_id):
        return "channel"
    return None


_GATE_MESSAGES: dict[GateReason, str] = {
    "paused": N_("Video generation is paused on this server by its moderators."),
    "banned": N_("You are not allowed to use this bot on this server."),
    "channel": N_(
        "Videos cannot be made in this channel. Ask a moderator where the bot is allowed."
    ),
    "blocked": N_("Your prompt was refused by the server's blocklist."),
    "unchecked": N_(
        "Your prompt could not be checked against the server's blocklist in time. "
        "Please try a shorter or simpler prompt."
    ),
}


def _rule(rule: BlockRule) -> Text:
    """Which rule refused a prompt, as its member reads it (:meth:`BlockRule.describe`)."""
    what = _("a blocked word") if rule.kind == "word" else _("a blocked pattern")
    return what if rule.id is None else _("rule #{number} ({what})", number=rule.id, what=what)


class RequestRefused(UserFacingError):
    """A gate closed before anything was charged: paused, banned, wrong channel, blocked prompt."""

    def __init__(
        self,
        reason: GateReason,
        *,
        rule: BlockRule | None = None,
        allowed_channels: frozenset[int] = frozenset(),
    ) -> None:
        message: Text = _(_GATE_MESSAGES[reason])
        if reason == "blocked" and rule is not None:
            message = _(
                "Your prompt was refused by the server's blocklist: {rule}.", rule=_rule(rule)
            )
        super().__init__(message)
        self.reason: GateReason = reason
        self.rule = rule
        self.allowed_channels = allowed_channels

    @classmethod
    def from_gate(cls, closed: GateClosed) -> RequestRefused:
        """The member's words for a gate the store found closed."""
        reason: GateReason = closed.reason  # type: ignore[assignment]
        return cls(reason, allowed_channels=closed.allowed_channels)
