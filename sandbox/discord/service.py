"""What each call does to the emulated Discord: messages, interactions, their rules, and the
server's setup as its settings change it."""

from __future__ import annotations

from .interaction_flow import CALLBACK_ROUTE, FOLLOWUP_ROUTE, WEBHOOK_MESSAGE_ROUTE, InteractionFlow
from .message_flow import Limits, Listener, MessageFlow
from .state import Channel, Member

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

    # the server's setup, as its settings change it ------------------------------------------

    def set_member_roles(self, user_id: int, role_ids: list[int]) -> Member:
        """Give a member exactly these roles (besides @everyone)."""
        member = self.world.member(user_id)
        unknown = [r for r in role_ids if r not in self.world.roles]
        if unknown:
            raise ValueError(f"unknown roles {unknown}")
        member.roles = [r for r in role_ids if r != self.world.guild_id]
        self.listener.member_updated(member)
        return member

    def set_overwrite(self, channel_id: int, target_id: int, *, allow: int, deny: int) -> Channel:
        """Set a channel permission overwrite and tell the bot."""
        channel = self.world.set_overwrite(channel_id, target_id, allow=allow, deny=deny)
        self.listener.channel_updated(channel)
        return channel

    def delete_channel(self, channel_id: int) -> None:
        """A channel deleted in the server's settings: its messages and threads go with it,
        every request naming it is 404 Unknown Channel, and the bot hears CHANNEL_DELETE."""
        channel = self.world.channel(channel_id)
        gone = [channel] + [c for c in self.world.channels.values() if c.parent_id == channel_id]
        for each in gone:
            for message_id in self._channel_log.pop(each.id, []):
                self.messages.pop(message_id, None)
            del self.world.channels[each.id]
        self.listener.channel_deleted(channel)
