"""Discord permission bits and the channel permission computation Discord performs."""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Permission(enum.IntFlag):
    """Discord's permission bits (the ones a text-chat bot meets)."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_AUDIT_LOG = 1 << 7
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    SEND_TTS_MESSAGES = 1 << 12
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    CHANGE_NICKNAME = 1 << 26
    MANAGE_NICKNAMES = 1 << 27
    MANAGE_ROLES = 1 << 28
    MANAGE_WEBHOOKS = 1 << 29
    USE_APPLICATION_COMMANDS = 1 << 31
    CREATE_PUBLIC_THREADS = 1 << 35
    SEND_MESSAGES_IN_THREADS = 1 << 38
    MODERATE_MEMBERS = 1 << 40


ALL_PERMISSIONS = (1 << 51) - 1

EVERYONE_DEFAULT = (
    Permission.CREATE_INSTANT_INVITE
    | Permission.ADD_REACTIONS
    | Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.EMBED_LINKS
    | Permission.ATTACH_FILES
    | Permission.READ_MESSAGE_HISTORY
    | Permission.USE_EXTERNAL_EMOJIS
    | Permission.CONNECT
    | Permission.SPEAK
    | Permission.CHANGE_NICKNAME
    | Permission.USE_APPLICATION_COMMANDS
    | Permission.CREATE_PUBLIC_THREADS
    | Permission.SEND_MESSAGES_IN_THREADS
)

BOT_ROLE_DEFAULT = (
    Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.EMBED_LINKS
    | Permission.ATTACH_FILES
    | Permission.READ_MESSAGE_HISTORY
    | Permission.MENTION_EVERYONE
    | Permission.ADD_REACTIONS
    | Permission.USE_EXTERNAL_EMOJIS
    | Permission.USE_APPLICATION_COMMANDS
)

MODERATOR_DEFAULT = (
    Permission.MANAGE_GUILD
    | Permission.MANAGE_MESSAGES
    | Permission.MODERATE_MEMBERS
    | Permission.KICK_MEMBERS
    | Permission.MENTION_EVERYONE
    | Permission.VIEW_AUDIT_LOG
)


def permission_from_name(name: str) -> Permission:
    """``"send_messages"`` or ``"SEND_MESSAGES"`` -> ``Permission.SEND_MESSAGES``."""
    try:
        return Permission[name.upper()]
    except KeyError:
        raise ValueError(f"unknown permission {name!r}") from None


def combine(names: Iterable[str | Permission]) -> int:
    """OR together permissions given as names or flags."""
    value = 0
    for item in names:
        value |= item if isinstance(item, Permission) else permission_from_name(item)
    return int(value)


def base_permissions(*, is_owner: bool, everyone: int, role_permissions: Iterable[int]) -> int:
    """A member's guild-level permissions (Discord's ``compute_base_permissions``)."""
    if is_owner:
        return ALL_PERMISSIONS
    value = everyone
    for perms in role_permissions:
        value |= perms
    if value & Permission.ADMINISTRATOR:
        return ALL_PERMISSIONS
    return value


def apply_overwrites(
    base: int,
    *,
    everyone_overwrite: tuple[int, int] | None,
    role_overwrites: Iterable[tuple[int, int]],
    member_overwrite: tuple[int, int] | None,
) -> int:
    """Apply channel overwrites (allow, deny) in Discord's order: @everyone, roles, member."""
    if base & Permission.ADMINISTRATOR or base == ALL_PERMISSIONS:
        return ALL_PERMISSIONS
    value = base
    if everyone_overwrite is not None:
        allow, deny = everyone_overwrite
        value = (value & ~deny) | allow
    role_allow = 0
    role_deny = 0
    for allow, deny in role_overwrites:
        role_allow |= allow
        role_deny |= deny
    value = (value & ~role_deny) | role_allow
    if member_overwrite is not None:
        allow, deny = member_overwrite
        value = (value & ~deny) | allow
    if not value & Permission.VIEW_CHANNEL:
        # Without View Channel every other channel permission is moot.
        return 0
    return value
