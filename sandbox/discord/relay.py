"""Relays every change of the emulated Discord to the bot's gateway and to subscribers."""

from __future__ import annotations

from collections.abc import Callable

from .errors import JSON
from .events import EmulatorEvent, EventHub
from .gateway import (
    DIRECT_MESSAGES,
    GUILD_MEMBERS,
    GUILD_MESSAGES,
    GUILDS,
    MESSAGE_CONTENT,
    Gateway,
    Session,
)
from .interactions import MODAL, InteractionRecord
from .messages import Message
from .state import Channel, Member


class Relay:
    """Turns service changes into gateway dispatches (honouring intents) and events."""

    def __init__(
        self,
        *,
        gateway: Gateway,
        events: EventHub,
        render: Callable[[Message, bool], JSON],
        bot_user_id: int,
        guild_id: int,
        guild: Callable[[], JSON],
    ) -> None:
        self._guild = guild
        self._gateway = gateway
        self._events = events
        self._render = render
        self._bot_id = bot_user_id
        self._guild_id = guild_id

    def _message_payload(self, message: Message) -> Callable[[Session], JSON | None]:
        full = self._render(message, True)
        bot_id = self._bot_id

        def for_session(session: Session) -> JSON | None:
            needed = DIRECT_MESSAGES if message.guild_id is None else GUILD_MESSAGES
            if not session.intents & needed:
                return None
            privileged = (
                session.intents & MESSAGE_CONTENT
                or message.author_id == bot_id
                or message.guild_id is None
                or bot_id in message.mentions.users
            )
            if privileged:
                return full
            # Without the message content intent Discord blanks other people's messages.
            return {**full, "content": "", "embeds": [], "attachments": [], "components": []}

        return for_session

    def _publish(self, kind: str, message: Message, data: JSON | None = None) -> None:
        self._events.publish(
            EmulatorEvent(
                type=kind,
                data=data if data is not None else {"message": self._render(message, False)},
                channel_id=message.channel_id,
                visible_to=message.ephemeral_to,
            )
        )

    def message_created(self, message: Message) -> None:
        """MESSAGE_CREATE to the bot (not for ephemeral messages) and an event."""
        if message.ephemeral_to is None:
            self._gateway.dispatch("MESSAGE_CREATE", self._message_payload(message))
        self._publish("message_create", message)

    def message_updated(self, message: Message) -> None:
        """MESSAGE_UPDATE to the bot (not for ephemeral messages) and an event."""
        if message.ephemeral_to is None:
            self._gateway.dispatch("MESSAGE_UPDATE", self._message_payload(message))
        self._publish("message_update", message)

    def message_deleted(self, message: Message) -> None:
        """MESSAGE_DELETE to the bot (not for ephemeral messages) and an event."""
        if message.ephemeral_to is None:
            data: JSON = {"id": str(message.id), "channel_id": str(message.channel_id)}
            if message.guild_id is not None:
                data["guild_id"] = str(message.guild_id)
            intent = GUILD_MESSAGES if message.guild_id is not None else DIRECT_MESSAGES
            self._gateway.dispatch("MESSAGE_DELETE", data, intent=intent)
        self._publish("message_delete", message, {"id": str(message.id)})

    def interaction_created(self, record: InteractionRecord) -> None:
        """INTERACTION_CREATE to the bot (no intent needed) and an event."""
        self._gateway.dispatch("INTERACTION_CREATE", record.payload)
        self._events.publish(
            EmulatorEvent("interaction_create", interaction_summary(record), record.channel_id)
        )

    def interaction_changed(self, record: InteractionRecord, what: str) -> None:
        """An event when an interaction is answered or dies unanswered."""
        summary = interaction_summary(record)
        kind = "interaction_failed" if what == "failed" else "interaction_response"
        self._events.publish(EmulatorEvent(kind, summary, record.channel_id, record.user_id))

    def channel_updated(self, channel: Channel) -> None:
        """CHANNEL_UPDATE (e.g. new permission overwrites)."""
        self._gateway.dispatch("CHANNEL_UPDATE", channel.to_dict(), intent=GUILDS)

    def channel_deleted(self, channel: Channel) -> None:
        """CHANNEL_DELETE (deleted in the server's settings); a thread's is THREAD_DELETE,
        which carries only its ids and type (Events > Gateway Events, "Thread Delete")."""
        if channel.parent_id is None:
            self._gateway.dispatch("CHANNEL_DELETE", channel.to_dict(), intent=GUILDS)
            return
        ids = {
            "id": str(channel.id),
            "guild_id": str(channel.guild_id),
            "parent_id": str(channel.parent_id),
            "type": channel.type,
        }
        self._gateway.dispatch("THREAD_DELETE", ids, intent=GUILDS)

    def member_updated(self, member: Member) -> None:
        """GUILD_MEMBER_UPDATE (e.g. new roles)."""
        data = member.to_dict()
        data["guild_id"] = str(self._guild_id)
        self._gateway.dispatch("GUILD_MEMBER_UPDATE", data, intent=GUILD_MEMBERS)

    def guild_updated(self) -> None:
        """GUILD_UPDATE (e.g. a new preferred locale)."""
        self._gateway.dispatch("GUILD_UPDATE", self._guild(), intent=GUILDS)


def interaction_summary(record: InteractionRecord) -> JSON:
    """What the page needs to know about an interaction."""
    return {
        "id": str(record.id),
        "kind": record.type,
        "user_id": str(record.user_id),
        "name": record.name,
        "custom_id": record.custom_id,
        "response_type": record.response_type,
        "failed": record.failed,
        # The form the bot opened, for the page to show to that user as a dialog.
        "modal": record.modal if record.response_type == MODAL else None,
    }
