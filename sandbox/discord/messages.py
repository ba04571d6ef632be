"""Messages: the stored form, Discord's validation of message bodies, and mention rules."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .cdn import AttachmentStore, StoredFile
from .components import assign_ids
from .errors import (
    EMPTY_MESSAGE,
    JSON,
    DiscordHTTPError,
    entity_too_large,
    invalid_form,
)
from .snowflake import iso_timestamp

# Message types and flags.
DEFAULT = 0
REPLY = 19
CHAT_INPUT_COMMAND = 20
CONTEXT_MENU_COMMAND = 23
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_COMPONENTS_V2 = 1 << 15
SETTABLE_FLAGS = (
    FLAG_SUPPRESS_EMBEDS | FLAG_EPHEMERAL | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_COMPONENTS_V2
)

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_CUSTOM_ID = 100
BUTTON = 2
ACTION_ROW = 1
LINK_STYLE = 5

_USER_MENTION = re.compile(r"<@!?(\d{15,21})>")
_ROLE_MENTION = re.compile(r"<@&(\d{15,21})>")
_EVERYONE = re.compile(r"@(everyone|here)\b")


@dataclass
class Upload:
    """One ``files[n]`` part of a multipart request."""

    index: int
    filename: str
    data: bytes
    content_type: str | None


@dataclass
class InteractionLink:
    """What a message created through an interaction records about it."""

    id: int
    type: int
    user_id: int
    name: str | None
    guild_id: int | None
    command_type: int = 1
    original_response_message_id: int | None = None
    interacted_message_id: int | None = None


@dataclass
class Mentions:
    """Who a message mentions (and so pings), after allowed_mentions is applied."""

    users: list[int] = field(default_factory=list)
    roles: list[int] = field(default_factory=list)
    everyone: bool = False


@dataclass
class Message:
    """A message as the emulator stores it."""

    id: int
    channel_id: int
    guild_id: int | None
    author_id: int
    timestamp: datetime
    content: str = ""
    embeds: list[JSON] = field(default_factory=list)
    components: list[JSON] = field(default_factory=list)
    attachments: list[StoredFile] = field(default_factory=list)
    type: int = DEFAULT
    flags: int = 0
    tts: bool = False
    mentions: Mentions = field(default_factory=Mentions)
    pinged_user_ids: list[int] = field(default_factory=list)
    edited_timestamp: datetime | None = None
    webhook_id: int | None = None
    application_id: int | None = None
    interaction: InteractionLink | None = None
    message_reference: JSON | None = None
    nonce: str | None = None
    ephemeral_to: int | None = None
    allowed_mentions: JSON | None = None
    edit_times: list[datetime] = field(default_factory=list)

    @property
    def ephemeral(self) -> bool:
        """Whether only the interacting user can see this message."""
        return bool(self.flags & FLAG_EPHEMERAL)

    def custom_ids(self) -> Iterator[tuple[str, JSON]]:
        """Every (custom_id, component) in this message's components, nested ones included."""
        yield from _walk_custom_ids(self.components)


def _walk_custom_ids(components: Iterable[Any]) -> Iterator[tuple[str, JSON]]:
    for component in components:
        if not isinstance(component, dict):
            continue
        custom_id = component.get("custom_id")
        if isinstance(custom_id, str):
            yield custom_id, component
        for key in ("components", "accessory"):
            inner = component.get(key)
            if isinstance(inner, list):
                yield from _walk_custom_ids(inner)
            elif isinstance(inner, dict):
                yield from _walk_custom_ids([inner])


# validation ------------------------------------------------------------------------------


def check_upload_sizes(uploads: Iterable[Upload], limit: int) -> None:
    """413 / 40005 when any file is over the per-file upload limit."""
    for upload in uploads:
        if len(upload.data) > limit:
            raise entity_too_large()


def check_content(content: Any) -> str | None:
    """Validate ``content``: a string of at most 2000 characters (or null)."""
    if content is None:
        return None
    if not isinstance(content, str):
        raise invalid_form("content", "STRING_TYPE_CONVERT", "Could not interpret value as string.")
    if len(content) > MAX_CONTENT:
        raise invalid_form(
            "content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."
        )
    return content


def _check_length(value: Any, limit: int, path: str) -> int:
    if value is None:
        return 0
    if not isinstance(value, str):
        raise invalid_form(path, "STRING_TYPE_CONVERT", "Could not interpret value as string.")
    if len(value) > limit:
        raise invalid_form(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
    return len(value)


def check_embeds(embeds: Any) -> list[JSON]:
    """Validate embeds against Discord's limits; returns them with ``type`` filled in."""
    if embeds is None:
        return []
    if not isinstance(embeds, list):
        raise invalid_form(
            "embeds", "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType"
        )
    if len(embeds) > MAX_EMBEDS:
        raise invalid_form("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    cleaned: list[JSON] = []
    for index, embed in enumerate(embeds):
        path = f"embeds.{index}"
        if not isinstance(embed, dict):
            raise invalid_form(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
        total += _check_length(embed.get("title"), 256, f"{path}.title")
        total += _check_length(embed.get("description"), 4096, f"{path}.description")
        author = embed.get("author") or {}
        total += _check_length(author.get("name"), 256, f"{path}.author.name")
        footer = embed.get("footer") or {}
        total += _check_length(footer.get("text"), 2048, f"{path}.footer.text")
        fields = embed.get("fields") or []
        if len(fields) > 25:
            raise invalid_form(
                f"{path}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
            )
        for f_index, item in enumerate(fields):
            f_path = f"{path}.fields.{f_index}"
            for key, limit in (("name", 256), ("value", 1024)):
                value = item.get(key)
                if value is None or value == "":
                    raise invalid_form(
                        f"{f_path}.{key}", "BASE_TYPE_REQUIRED", "This field is required"
                    )
                total += _check_length(value, limit, f"{f_path}.{key}")
        color = embed.get("color")
        if color is not None and (not isinstance(color, int) or not 0 <= color <= 0xFFFFFF):
            raise invalid_form(
                f"{path}.color", "NUMBER_TYPE_MAX", "int value should be <= 16777215."
            )
        cleaned.append({"type": "rich", **embed})
    if total > MAX_EMBED_TOTAL:
        raise invalid_form(
            "embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
        )
    return cleaned


def check_components(components: Any, *, v2: bool) -> list[JSON]:
    """Validate message components (action rows of buttons/selects, or components v2)."""
    if components is None:
        return []
    if not isinstance(components, list):
        raise invalid_form(
            "components", "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType"
        )
    if not v2:
        if len(components) > 5:
            raise invalid_form(
                "components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."
            )
        for index, row in enumerate(components):
            path = f"components.{index}"
            if not isinstance(row, dict) or row.get("type") != ACTION_ROW:
                raise invalid_form(
                    f"{path}.type",
                    "UNION_TYPE_CHOICES",
                    'Value of field "type" must be one of (1,).',
                )
            children = row.get("components") or []
            if not 1 <= len(children) <= 5:
                raise invalid_form(
                    f"{path}.components",
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 5 in length.",
                )
            for c_index, child in enumerate(children):
                _check_child(child, f"{path}.components.{c_index}")
    seen: set[str] = set()
    for custom_id, _ in _walk_custom_ids(components):
        if len(custom_id) > MAX_CUSTOM_ID:
            raise invalid_form(
                "components", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length."
            )
        if custom_id in seen:
            raise invalid_form(
                "components",
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                "Component custom id cannot be duplicated",
            )
        seen.add(custom_id)
    return assign_ids(components)


def _check_child(child: Any, path: str) -> None:
    if not isinstance(child, dict):
        raise invalid_form(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
    if child.get("type") != BUTTON:
        return
    style = child.get("style")
    if style == LINK_STYLE:
        if not child.get("url"):
            raise invalid_form(f"{path}.url", "BASE_TYPE_REQUIRED", "This field is required")
    elif not child.get("custom_id"):
        raise invalid_form(f"{path}.custom_id", "BASE_TYPE_REQUIRED", "This field is required")
    _check_length(child.get("label"), 80, f"{path}.label")


def check_not_empty(message: Message) -> None:
    """400 / 50006 for a message with nothing to show."""
    if not (message.content or message.embeds or message.attachments or message.components):
        raise DiscordHTTPError(400, EMPTY_MESSAGE, "Cannot send an empty message")


# mentions --------------------------------------------------------------------------------


def compute_mentions(
    content: str,
    allowed: JSON | None,
    *,
    known_users: Iterable[int],
    roles: dict[int, bool],
    can_mention_everyone: bool,
    in_guild: bool,
    replied_user_id: int | None = None,
) -> Mentions:
    """Who a message mentions, following Discord's allowed_mentions rules.

    Without ``allowed_mentions`` everything in the content is parsed. With it, user mentions
    count only when ``parse`` has ``"users"`` or the user is listed in ``users``; likewise
    roles; ``@everyone``/``@here`` only when ``parse`` has ``"everyone"`` (and the author may
    mention everyone). ``roles`` maps role ids to whether anybody may mention them.
    """
    if allowed is None:
        parse = {"users", "roles", "everyone"}
        allowed_users: set[int] = set()
        allowed_roles: set[int] = set()
        replied = True
    else:
        parse = set(allowed.get("parse") or [])
        allowed_users = {int(u) for u in allowed.get("users") or []}
        allowed_roles = {int(r) for r in allowed.get("roles") or []}
        replied = bool(allowed.get("replied_user", False))
        if "users" in parse and allowed_users:
            raise invalid_form(
                "allowed_mentions",
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                'parse:["users"] and users: [ids...] are mutually exclusive.',
            )
        if "roles" in parse and allowed_roles:
            raise invalid_form(
                "allowed_mentions",
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                'parse:["roles"] and roles: [ids...] are mutually exclusive.',
            )
    known = set(known_users)
    users: list[int] = []
    for match in _USER_MENTION.finditer(content):
        uid = int(match.group(1))
        if uid in known and uid not in users and ("users" in parse or uid in allowed_users):
            users.append(uid)
    if replied_user_id is not None and replied and replied_user_id not in users:
        users.append(replied_user_id)
    mentioned_roles: list[int] = []
    if in_guild:
        for match in _ROLE_MENTION.finditer(content):
            rid = int(match.group(1))
            if rid not in roles or rid in mentioned_roles:
                continue
            if ("roles" in parse or rid in allowed_roles) and (roles[rid] or can_mention_everyone):
                mentioned_roles.append(rid)
    everyone = (
        in_guild
        and "everyone" in parse
        and can_mention_everyone
        and _EVERYONE.search(content) is not None
    )
    return Mentions(users=users, roles=mentioned_roles, everyone=everyone)


# serialisation ---------------------------------------------------------------------------


def message_to_dict(
    message: Message,
    *,
    store: AttachmentStore,
    author: JSON,
    mentioned_users: list[JSON],
    interaction_user: JSON | None,
) -> JSON:
    """The message object as the REST API returns it."""
    data: JSON = {
        "id": str(message.id),
        "channel_id": str(message.channel_id),
        "type": message.type,
        "content": message.content,
        "author": author,
        "timestamp": iso_timestamp(message.timestamp),
        "edited_timestamp": (
            iso_timestamp(message.edited_timestamp) if message.edited_timestamp else None
        ),
        "tts": message.tts,
        "mention_everyone": message.mentions.everyone,
        "mentions": mentioned_users,
        "mention_roles": [str(r) for r in message.mentions.roles],
        "attachments": [store.to_dict(a) for a in message.attachments],
        "embeds": message.embeds,
        "components": message.components,
        "pinned": False,
        "flags": message.flags,
    }
    if message.webhook_id is not None:
        data["webhook_id"] = str(message.webhook_id)
    if message.application_id is not None:
        data["application_id"] = str(message.application_id)
    if message.nonce is not None:
        data["nonce"] = message.nonce
    if message.message_reference is not None:
        data["message_reference"] = message.message_reference
    link = message.interaction
    if link is not None and interaction_user is not None:
        owners = {"0": str(link.guild_id) if link.guild_id else "0"}
        metadata: JSON = {
            "id": str(link.id),
            "type": link.type,
            "user": interaction_user,
            "authorizing_integration_owners": owners,
        }
        if link.name is not None:
            metadata["name"] = link.name
            metadata["command_type"] = link.command_type
        if link.original_response_message_id is not None:
            metadata["original_response_message_id"] = str(link.original_response_message_id)
        if link.interacted_message_id is not None:
            metadata["interacted_message_id"] = str(link.interacted_message_id)
        data["interaction_metadata"] = metadata
        if link.name is not None:
            data["interaction"] = {
                "id": str(link.id),
                "type": link.type,
                "name": link.name,
                "user": interaction_user,
            }
    return data
