"""The emulated server's things: users, roles, channel overwrites, channels and threads, members."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .errors import JSON
from .snowflake import iso_timestamp, utcnow

TEXT_CHANNEL = 0
DM_CHANNEL = 1
PUBLIC_THREAD = 11
ROLE_OVERWRITE = 0
MEMBER_OVERWRITE = 1


@dataclass
class User:
    """A Discord user account."""

    id: int
    username: str
    global_name: str | None
    bot: bool = False
    locale: str = "en-US"
    """The language of the user's Discord client: interactions carry it as ``locale``."""

    @property
    def display_name(self) -> str:
        """The name Discord shows when the member has no nickname."""
        return self.global_name or self.username

    def to_dict(self) -> JSON:
        """The user object as the API returns it."""
        data: JSON = {
            "id": str(self.id),
            "username": self.username,
            "global_name": self.global_name,
            "discriminator": "0",
            "avatar": None,
            "avatar_decoration_data": None,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
        }
        if self.bot:
            data["bot"] = True
        return data


@dataclass
class Role:
    """A guild role."""

    id: int
    name: str
    permissions: int
    position: int
    color: int = 0
    hoist: bool = False
    mentionable: bool = False
    managed: bool = False

    def to_dict(self) -> JSON:
        """The role object as the API returns it."""
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": self.color,
            "colors": {
                "primary_color": self.color,
                "secondary_color": None,
                "tertiary_color": None,
            },
            "hoist": self.hoist,
            "managed": self.managed,
            "mentionable": self.mentionable,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }


@dataclass
class Overwrite:
    """A channel permission overwrite for a role or a member."""

    id: int
    type: int
    allow: int = 0
    deny: int = 0

    def to_dict(self) -> JSON:
        """The overwrite object as the API returns it."""
        return {
            "id": str(self.id),
            "type": self.type,
            "allow": str(self.allow),
            "deny": str(self.deny),
        }


@dataclass
class Channel:
    """A guild text channel or a DM channel."""

    id: int
    type: int
    name: str | None
    guild_id: int | None
    position: int = 0
    topic: str | None = None
    overwrites: dict[int, Overwrite] = field(default_factory=dict)
    recipient_ids: list[int] = field(default_factory=list)
    last_message_id: int | None = None
    parent_id: int | None = None
    """A thread's channel."""
    owner_id: int | None = None
    """Who started a thread."""
    created_at: datetime | None = None

    def to_dict(self, users: dict[int, User] | None = None) -> JSON:
        """The channel object as the API returns it."""
        if self.type == DM_CHANNEL:
            recipients = [users[uid].to_dict() for uid in self.recipient_ids] if users else []
            return {
                "id": str(self.id),
                "type": DM_CHANNEL,
                "last_message_id": _opt_str(self.last_message_id),
                "flags": 0,
                "recipients": recipients,
            }
        if self.type == PUBLIC_THREAD:
            return self._thread_dict()
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "parent_id": None,
            "topic": self.topic,
            "nsfw": False,
            "rate_limit_per_user": 0,
            "last_message_id": _opt_str(self.last_message_id),
            "flags": 0,
            "permission_overwrites": [ow.to_dict() for ow in self.overwrites.values()],
        }

    def _thread_dict(self) -> JSON:
        # Resources > Channel, "Thread-specific fields": no overwrites of its own (a thread
        # follows its parent's), metadata about archiving, counts.
        started = iso_timestamp(self.created_at or utcnow())
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "parent_id": str(self.parent_id),
            "owner_id": str(self.owner_id),
            "name": self.name,
            "last_message_id": _opt_str(self.last_message_id),
            "rate_limit_per_user": 0,
            "flags": 0,
            "member_count": 1,
            "message_count": 0,
            "total_message_sent": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": started,
                "locked": False,
                "create_timestamp": started,
            },
        }


@dataclass
class Member:
    """A user's membership in the guild."""

    user: User
    roles: list[int]
    joined_at: datetime
    nick: str | None = None
    dms_open: bool = True

    @property
    def display_name(self) -> str:
        """The name the channel shows for this member."""
        return self.nick or self.user.display_name

    def to_dict(self, *, with_user: bool = True, permissions: int | None = None) -> JSON:
        """The guild member object as the API returns it."""
        data: JSON = {
            "roles": [str(r) for r in self.roles],
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "joined_at": iso_timestamp(self.joined_at),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.to_dict()
        if permissions is not None:
            data["permissions"] = str(permissions)
        return data


def _opt_str(value: int | None) -> str | None:
    return None if value is None else str(value)
