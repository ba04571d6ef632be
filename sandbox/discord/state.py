"""The emulated server: users, one guild with its roles, channels and members, DM channels."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

from .entities import (
    DM_CHANNEL,
    MEMBER_OVERWRITE,
    PUBLIC_THREAD,
    ROLE_OVERWRITE,
    TEXT_CHANNEL,
    Channel,
    Member,
    Overwrite,
    Role,
    User,
)
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

__all__ = [
    "DM_CHANNEL",
    "MEMBER_OVERWRITE",
    "PUBLIC_THREAD",
    "ROLE_OVERWRITE",
    "TEXT_CHANNEL",
    "Cast",
    "Channel",
    "Member",
    "Overwrite",
    "Role",
    "User",
    "World",
]


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
        self.preferred_locale = "en-US"
        """The server's language (Server Settings > Community): ``guild_locale``."""
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

    def threads(self) -> list[Channel]:
        """The guild's active threads, oldest first."""
        return [c for c in self.channels.values() if c.type == PUBLIC_THREAD]

    def add_thread(self, parent_id: int, name: str, owner_id: int) -> Channel:
        """A public thread in a text channel, started by ``owner_id``."""
        parent = self.channel(parent_id)
        if parent.type != TEXT_CHANNEL:
            raise ValueError("threads start in text channels")
        thread = Channel(
            self._ids.next(),
            PUBLIC_THREAD,
            name,
            parent.guild_id,
            parent_id=parent.id,
            owner_id=owner_id,
            created_at=utcnow(),
        )
        self.channels[thread.id] = thread
        return thread

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
        if channel.type == PUBLIC_THREAD and channel.parent_id is not None:
            # Topics > Threads: a thread has its parent's permissions, and posting in it is
            # Send Messages in Threads (Send Messages does not count there).
            perms = self.channel_permissions(user_id, channel.parent_id)
            if perms & Permission.SEND_MESSAGES_IN_THREADS:
                return perms | Permission.SEND_MESSAGES
            return perms & ~Permission.SEND_MESSAGES
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
            "preferred_locale": self.preferred_locale,
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
                "threads": [t.to_dict() for t in self.threads()],
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
