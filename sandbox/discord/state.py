"""The emulated server: users, one guild with its roles, channels and members, DM channels."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from .errors import JSON, UNKNOWN_CHANNEL, UNKNOWN_MEMBER, UNKNOWN_USER, not_found
from .permissions import (
    BOT_ROLE_DEFAULT,
    EVERYONE_DEFAULT,
    MODERATOR_DEFAULT,
    Permission,
    apply_overwrites,
    base_permissions,
)
from .snowflake import SnowflakeGenerator, iso_timestamp, utcnow

TEXT_CHANNEL = 0
DM_CHANNEL = 1
ROLE_OVERWRITE = 0
MEMBER_OVERWRITE = 1


@dataclass
class User:
    """A Discord user account."""

    id: int
    username: str
    global_name: str | None
    bot: bool = False

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


@dataclass(frozen=True)
class Cast:
    """The ids of the people and places every emulator starts with."""

    application_id: int
    bot_user_id: int
    guild_id: int
    owner_id: int
    requester_id: int
    member_id: int
    moderator_id: int
    everyone_role_id: int
    bot_role_id: int
    moderator_role_id: int
    member_role_id: int
    channel_id: int
    other_channel_id: int


class World:
    """Users, the guild with its roles, channels and members, and DM channels."""

    def __init__(
        self,
        ids: SnowflakeGenerator,
        *,
        guild_name: str = "Seedance Sandbox",
        bot_name: str = "Seedance",
        channel_names: tuple[str, str] = ("general", "videos"),
    ) -> None:
        self._ids = ids
        self.users: dict[int, User] = {}
        self.roles: dict[int, Role] = {}
        self.channels: dict[int, Channel] = {}
        self.members: dict[int, Member] = {}
        self.guild_name = guild_name
        self.created = utcnow()

        application_id = ids.next()
        # A bot user shares its id with its application, as on Discord.
        bot = self._add_user(application_id, "seedance", bot_name, bot=True)
        guild_id = ids.next()
        self.guild_id = guild_id
        owner = self._add_user(ids.next(), "olga_owner", "Olga (owner)")
        requester = self._add_user(ids.next(), "ada", "Ada")
        second = self._add_user(ids.next(), "grace", "Grace")
        moderator = self._add_user(ids.next(), "mia_mod", "Mia (moderator)")

        # @everyone's id is the guild id.
        self.roles[guild_id] = Role(guild_id, "@everyone", int(EVERYONE_DEFAULT), 0)
        member_role = Role(ids.next(), "Member", 0, 1, color=0x2ECC71, mentionable=True)
        moderator_role = Role(
            ids.next(), "Moderator", int(MODERATOR_DEFAULT), 2, color=0xE67E22, hoist=True
        )
        bot_role = Role(ids.next(), bot_name, int(BOT_ROLE_DEFAULT), 3, managed=True)
        for role in (member_role, moderator_role, bot_role):
            self.roles[role.id] = role

        self.owner_id = owner.id
        for user, roles in (
            (bot, [bot_role.id]),
            (owner, [member_role.id]),
            (requester, [member_role.id]),
            (second, [member_role.id]),
            (moderator, [member_role.id, moderator_role.id]),
        ):
            self.members[user.id] = Member(user=user, roles=roles, joined_at=self.created)

        first = Channel(ids.next(), TEXT_CHANNEL, channel_names[0], guild_id, position=0)
        first.topic = "Try /animate here"
        second_channel = Channel(ids.next(), TEXT_CHANNEL, channel_names[1], guild_id, position=1)
        for channel in (first, second_channel):
            self.channels[channel.id] = channel

        self.cast = Cast(
            application_id=application_id,
            bot_user_id=bot.id,
            guild_id=guild_id,
            owner_id=owner.id,
            requester_id=requester.id,
            member_id=second.id,
            moderator_id=moderator.id,
            everyone_role_id=guild_id,
            bot_role_id=bot_role.id,
            moderator_role_id=moderator_role.id,
            member_role_id=member_role.id,
            channel_id=first.id,
            other_channel_id=second_channel.id,
        )
        self.bot_token = _make_token(bot.id)

    def _add_user(self, user_id: int, username: str, name: str, *, bot: bool = False) -> User:
        user = User(user_id, username, name, bot=bot)
        self.users[user_id] = user
        return user

    # lookups -----------------------------------------------------------------------------

    def user(self, user_id: int) -> User:
        """A user by id (404 Unknown User)."""
        try:
            return self.users[user_id]
        except KeyError:
            raise not_found(UNKNOWN_USER, "User") from None

    def member(self, user_id: int) -> Member:
        """A guild member by user id (404 Unknown Member)."""
        try:
            return self.members[user_id]
        except KeyError:
            raise not_found(UNKNOWN_MEMBER, "Member") from None

    def channel(self, channel_id: int) -> Channel:
        """A channel by id (404 Unknown Channel)."""
        try:
            return self.channels[channel_id]
        except KeyError:
            raise not_found(UNKNOWN_CHANNEL, "Channel") from None

    def text_channels(self) -> list[Channel]:
        """The guild's text channels in display order."""
        found = [c for c in self.channels.values() if c.type == TEXT_CHANNEL]
        return sorted(found, key=lambda c: c.position)

    def dm_channel_for(self, user_id: int) -> Channel:
        """The bot's DM channel with a user, created on first use."""
        self.user(user_id)
        for channel in self.channels.values():
            if channel.type == DM_CHANNEL and channel.recipient_ids == [user_id]:
                return channel
        channel = Channel(self._ids.next(), DM_CHANNEL, None, None, recipient_ids=[user_id])
        self.channels[channel.id] = channel
        return channel

    # permissions -------------------------------------------------------------------------

    def guild_permissions(self, user_id: int) -> int:
        """A member's permissions in the guild, before channel overwrites."""
        member = self.member(user_id)
        return base_permissions(
            is_owner=user_id == self.owner_id,
            everyone=self.roles[self.guild_id].permissions,
            role_permissions=[self.roles[r].permissions for r in member.roles if r in self.roles],
        )

    def channel_permissions(self, user_id: int, channel_id: int) -> int:
        """A member's permissions in a channel, overwrites applied."""
        channel = self.channel(channel_id)
        if channel.type == DM_CHANNEL:
            return int(
                Permission.VIEW_CHANNEL
                | Permission.SEND_MESSAGES
                | Permission.EMBED_LINKS
                | Permission.ATTACH_FILES
                | Permission.READ_MESSAGE_HISTORY
                | Permission.ADD_REACTIONS
            )
        base = self.guild_permissions(user_id)
        member = self.members[user_id]

        def pair(target: int) -> tuple[int, int] | None:
            ow = channel.overwrites.get(target)
            return None if ow is None else (ow.allow, ow.deny)

        return apply_overwrites(
            base,
            everyone_overwrite=pair(self.guild_id),
            role_overwrites=[
                (ow.allow, ow.deny)
                for ow in channel.overwrites.values()
                if ow.type == ROLE_OVERWRITE and ow.id in member.roles
            ],
            member_overwrite=pair(user_id),
        )

    def set_overwrite(self, channel_id: int, target_id: int, *, allow: int, deny: int) -> Channel:
        """Create or replace a channel overwrite for a role or member (allow=deny=0 removes it)."""
        channel = self.channel(channel_id)
        if target_id in self.roles:
            kind = ROLE_OVERWRITE
        elif target_id in self.members:
            kind = MEMBER_OVERWRITE
        else:
            raise ValueError(f"{target_id} is neither a role nor a member")
        if allow == 0 and deny == 0:
            channel.overwrites.pop(target_id, None)
        else:
            channel.overwrites[target_id] = Overwrite(target_id, kind, allow, deny)
        return channel

    # payloads ----------------------------------------------------------------------------

    def guild_dict(self) -> JSON:
        """The guild object as ``GET /guilds/{id}`` returns it."""
        return {
            "id": str(self.guild_id),
            "name": self.guild_name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "region": "deprecated",
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "roles": [r.to_dict() for r in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": str(self.cast.channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            # Resources > Guild, "Guild Structure": these come back null (max_presences "is
            # always returned, apart from the largest of guilds") or with their defaults.
            "max_presences": None,
            "widget_enabled": False,
            "widget_channel_id": None,
            "incidents_data": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
        }

    def guild_create_dict(self) -> JSON:
        """The full guild object of a GUILD_CREATE dispatch."""
        data = self.guild_dict()
        data.update(
            {
                "joined_at": iso_timestamp(self.created),
                "large": False,
                "unavailable": False,
                "member_count": len(self.members),
                "members": [m.to_dict() for m in self.members.values()],
                "channels": [c.to_dict() for c in self.text_channels()],
                "threads": [],
                "presences": [],
                "voice_states": [],
                "stage_instances": [],
                "guild_scheduled_events": [],
                "soundboard_sounds": [],
                "lazy": True,
            }
        )
        return data

    def member_dict(self, user_id: int) -> JSON:
        """A member object as ``GET /guilds/{g}/members/{u}`` returns it."""
        return self.member(user_id).to_dict()

    def resolved_member(self, user_id: int, channel_id: int) -> JSON:
        """A member object as it appears in interactions (with channel permissions)."""
        return self.member(user_id).to_dict(
            permissions=self.channel_permissions(user_id, channel_id)
        )


def _make_token(user_id: int) -> str:
    """A bot token shaped like Discord's: base64(user id).timestamp.hmac."""
    head = base64.urlsafe_b64encode(str(user_id).encode()).decode().rstrip("=")
    return f"{head}.{secrets.token_urlsafe(5)}.{secrets.token_urlsafe(27)}"
