"""What each call does to the emulated Discord: messages, interactions, their rules."""

from __future__ import annotations

from .interaction_flow import CALLBACK_ROUTE, FOLLOWUP_ROUTE, WEBHOOK_MESSAGE_ROUTE, InteractionFlow
from .message_flow import Limits, Listener, MessageFlow

__all__ = [
    "CALLBACK_ROUTE",
    "FOLLOWUP_ROUTE",
    "WEBHOOK_MESSAGE_ROUTE",
    "DiscordService",
    "Limits",
    "Listener",
]


class DiscordService(InteractionFlow, MessageFlow):
    """The emulated Discord's behaviour behind the REST routes and the driver API."""
