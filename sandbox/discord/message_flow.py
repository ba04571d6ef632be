"""Channel messages on the emulated Discord: rendering, composing, storing, permissions."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from .attachments import build_attachments, resolve_embed_attachments
from .cdn import AttachmentStore
from .clock import Clock
from .commands import CommandRegistry
from .errors import (
    CANNOT_EDIT_OTHERS_MESSAGE,
    CANNOT_MESSAGE_USER,
    JSON,
    UNKNOWN_MESSAGE,
    DiscordHTTPError,
    invalid_form,
    missing_access,
    missing_permissions,
    not_found,
)
from .interactions import (
    InteractionRecord,
)
from .messages import (
    FLAG_COMPONENTS_V2,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    FLAG_SUPPRESS_EMBEDS,
    FLAG_SUPPRESS_NOTIFICATIONS,
    REPLY,
    SETTABLE_FLAGS,
    Message,
    Upload,
    check_components,
    check_content,
    check_embeds,
    check_not_empty,
    check_upload_sizes,
    compute_mentions,
    message_to_dict,
)
from .permissions import Permission
from .ratelimits import OLD_MESSAGE_AGE, RateLimiter
from .snowflake import SnowflakeGenerator
from .state import DM_CHANNEL, Channel, Member, World

NONCE_WINDOW = timedelta(minutes=5)
NONCE_LIMIT = 25
"""A nonce is an integer or a string of at most 25 characters."""


@dataclass
class Limits:
    """The timing and size rules the emulator enforces."""

    upload_limit: int = 10 * 1024 * 1024
    ack_deadline: float = 3.0
    token_lifetime: float = 900.0


class Listener(Protocol):
    """Receives every change, to dispatch it over the gateway and to subscribers."""

    def message_created(self, message: Message) -> None: ...

    def message_updated(self, message: Message) -> None: ...

    def message_deleted(self, message: Message) -> None: ...

    def interaction_created(self, record: InteractionRecord) -> None: ...

    def interaction_changed(self, record: InteractionRecord, what: str) -> None: ...

    def channel_updated(self, channel: Channel) -> None: ...

    def channel_deleted(self, channel: Channel) -> None: ...

    def member_updated(self, member: Member) -> None: ...

    def guild_updated(self) -> None: ...


class MessageFlow:
    """Messages: what creating, reading, editing and deleting them does, and who may."""

    def __init__(
        self,
        *,
        world: World,
        store: AttachmentStore,
        commands: CommandRegistry,
        ids: SnowflakeGenerator,
        limits: Limits,
        listener: Listener,
        clock: Clock,
        limiter: RateLimiter,
    ) -> None:
        self.clock = clock
        self.limiter = limiter
        self.world = world
        self.store = store
        self.commands = commands
        self.ids = ids
        self.limits = limits
        self.listener = listener
        self.messages: dict[int, Message] = {}
        self._channel_log: dict[int, list[int]] = defaultdict(list)
        self.interactions: dict[int, InteractionRecord] = {}
        self._by_token: dict[str, InteractionRecord] = {}

    @property
    def bot_id(self) -> int:
        """The bot user's id."""
        return self.world.cast.bot_user_id

    # rendering ---------------------------------------------------------------------------

    def render(self, message: Message, *, gateway: bool = False) -> JSON:
        """A message as the API returns it (``gateway=True``: as dispatched, with guild data)."""
        users = self.world.users
        author = users[message.author_id].to_dict()
        if message.webhook_id is not None:
            author["bot"] = True
        mentioned = []
        for uid in message.mentions.users:
            entry = users[uid].to_dict()
            if gateway and message.guild_id is not None and uid in self.world.members:
                entry["member"] = self.world.members[uid].to_dict(with_user=False)
            mentioned.append(entry)
        link = message.interaction
        embeds = resolve_embed_attachments(
            [_unsigned_media(e, message) for e in message.embeds], message.attachments, self.store
        )
        message = dataclasses.replace(message, embeds=embeds)
        data = message_to_dict(
            message,
            store=self.store,
            author=author,
            mentioned_users=mentioned,
            interaction_user=users[link.user_id].to_dict() if link else None,
        )
        if gateway and message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
            member = self.world.members.get(message.author_id)
            if member is not None and message.webhook_id is None:
                data["member"] = member.to_dict(with_user=False)
        return data

    def render_id(self, message_id: int) -> JSON | None:
        """A stored message by id, rendered, or ``None``."""
        message = self.messages.get(message_id)
        return None if message is None else self.render(message)

    def channel_log(self, channel_id: int) -> list[Message]:
        """Visible (non-ephemeral) messages of a channel, oldest first."""
        return [self.messages[mid] for mid in self._channel_log.get(channel_id, [])]

    def ephemeral_messages(self, user_id: int | None = None) -> list[Message]:
        """Ephemeral messages, oldest first, optionally only those one user sees."""
        found = [m for m in self.messages.values() if m.ephemeral_to is not None]
        if user_id is not None:
            found = [m for m in found if m.ephemeral_to == user_id]
        return sorted(found, key=lambda m: m.id)

    # composing ---------------------------------------------------------------------------

    def _compose(
        self,
        message: Message,
        payload: JSON,
        uploads: list[Upload],
        *,
        editing: bool,
        author_permissions: int,
        allow_ephemeral: bool,
    ) -> Message:
        """Apply a create/edit body to a copy of ``message``, validating like Discord."""
        check_upload_sizes(uploads, self.limits.upload_limit)
        draft = dataclasses.replace(message)
        if "content" in payload:
            draft.content = check_content(payload["content"]) or ""
        if "flags" in payload and payload["flags"] is not None:
            flags = int(payload["flags"])
            if editing:
                keep = draft.flags & ~FLAG_SUPPRESS_EMBEDS
                draft.flags = keep | (flags & FLAG_SUPPRESS_EMBEDS)
            else:
                settable = SETTABLE_FLAGS if allow_ephemeral else SETTABLE_FLAGS & ~FLAG_EPHEMERAL
                draft.flags = (draft.flags & ~settable) | (flags & settable)
        if "embeds" in payload:
            embeds = check_embeds(payload["embeds"])
            if embeds and not author_permissions & Permission.EMBED_LINKS:
                # Discord drops embeds from authors without Embed Links.
                embeds = []
            draft.embeds = embeds
        if "components" in payload:
            draft.components = check_components(
                payload["components"], v2=bool(draft.flags & FLAG_COMPONENTS_V2)
            )
        if uploads or "attachments" in payload:
            draft.attachments = build_attachments(
                payload,
                uploads,
                existing=message.attachments,
                store=self.store,
                channel_id=message.channel_id,
                editing=editing,
            )
        if "tts" in payload:
            draft.tts = bool(payload["tts"]) and not editing
        if "allowed_mentions" in payload:
            draft.allowed_mentions = payload["allowed_mentions"]
        draft.embeds = resolve_embed_attachments(draft.embeds, draft.attachments, self.store)
        replied_to = None
        if draft.message_reference is not None:
            target = self.messages.get(int(draft.message_reference.get("message_id", 0)))
            replied_to = target.author_id if target is not None else None
        draft.mentions = compute_mentions(
            draft.content,
            draft.allowed_mentions,
            known_users=self.world.users.keys(),
            roles={rid: role.mentionable for rid, role in self.world.roles.items()},
            can_mention_everyone=bool(author_permissions & Permission.MENTION_EVERYONE),
            in_guild=draft.guild_id is not None,
            replied_user_id=replied_to,
        )
        if not draft.flags & FLAG_LOADING:
            check_not_empty(draft)
        return draft

    def _pinged(self, message: Message) -> list[int]:
        """Who gets a notification: the allowed mentions, among those who see the channel."""
        if message.ephemeral or message.flags & FLAG_SUPPRESS_NOTIFICATIONS:
            return []
        members = self.world.members
        pinged = list(message.mentions.users)
        if message.mentions.everyone:
            pinged.extend(members)
        for rid in message.mentions.roles:
            pinged.extend(uid for uid, m in members.items() if rid in m.roles)
        result: list[int] = []
        for uid in pinged:
            if uid == message.author_id or uid in result:
                continue
            if uid in members and not self.user_can(
                uid, message.channel_id, Permission.VIEW_CHANNEL
            ):
                continue
            result.append(uid)
        return result

    def _store_new(self, message: Message) -> Message:
        message.pinged_user_ids = self._pinged(message)
        self.messages[message.id] = message
        if message.ephemeral_to is None:
            self._channel_log[message.channel_id].append(message.id)
            channel = self.world.channels.get(message.channel_id)
            if channel is not None:
                channel.last_message_id = message.id
        self.listener.message_created(message)
        self._touch_owner(message)
        return message

    def _touch_owner(self, message: Message) -> None:
        # Wake whoever waits on the interaction this message belongs to.
        if message.interaction is not None:
            record = self.interactions.get(message.interaction.id)
            if record is not None:
                record.touch()

    def _count_old_edit(self, message: Message, route: str) -> None:
        """30046 once edits of hour-old messages pass their cap (see ``ratelimits``)."""
        age = (self.clock.now() - message.timestamp).total_seconds()
        if age > OLD_MESSAGE_AGE:
            path = f"/channels/{message.channel_id}/messages/{message.id}"
            self.limiter.old_message_edit(message.channel_id, path, route)

    def _store_edit(self, draft: Message, *, mark_edited: bool = True) -> Message:
        now = self.clock.now()
        if mark_edited:
            draft.edited_timestamp = now
        draft.edit_times = [*draft.edit_times, now]
        self.messages[draft.id] = draft
        self.listener.message_updated(draft)
        self._touch_owner(draft)
        return draft

    def _remove(self, message: Message) -> None:
        self.messages.pop(message.id, None)
        log = self._channel_log.get(message.channel_id)
        if log and message.id in log:
            log.remove(message.id)
        self.listener.message_deleted(message)
        self._touch_owner(message)

    def _blank(self, channel_id: int, author_id: int) -> Message:
        channel = self.world.channel(channel_id)
        return Message(
            id=self.ids.next(),
            channel_id=channel_id,
            guild_id=channel.guild_id,
            author_id=author_id,
            timestamp=self.clock.now(),
        )

    # channel messages --------------------------------------------------------------------

    def _require(self, user_id: int, channel_id: int, needed: Permission) -> int:
        perms = self.world.channel_permissions(user_id, channel_id)
        if not perms & Permission.VIEW_CHANNEL:
            raise missing_access()
        if needed and (perms & needed) != needed:
            raise missing_permissions()
        return perms

    def create_channel_message(
        self, channel_id: int, author_id: int, payload: JSON, uploads: list[Upload]
    ) -> Message:
        """``POST /channels/{id}/messages``."""
        channel = self.world.channel(channel_id)
        if channel.type == DM_CHANNEL:
            recipient = channel.recipient_ids[0]
            member = self.world.members.get(recipient)
            if member is None or not member.dms_open:
                raise DiscordHTTPError(
                    403, CANNOT_MESSAGE_USER, "Cannot send messages to this user"
                )
        needed = Permission.SEND_MESSAGES
        if uploads:
            needed |= Permission.ATTACH_FILES
        perms = self._require(author_id, channel_id, needed)
        earlier = self._same_nonce(channel_id, author_id, payload)
        if earlier is not None:
            return earlier
        message = self._blank(channel_id, author_id)
        reference = payload.get("message_reference")
        if reference:
            target = self.messages.get(int(reference.get("message_id", 0)))
            if target is None or target.channel_id != channel_id or target.ephemeral_to is not None:
                raise invalid_form(
                    "message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                )
            message.type = REPLY
            message.message_reference = {
                "type": 0,
                "message_id": str(target.id),
                "channel_id": str(channel_id),
                **({"guild_id": str(channel.guild_id)} if channel.guild_id else {}),
            }
        if payload.get("nonce") is not None:
            message.nonce = str(payload["nonce"])
        draft = self._compose(
            message,
            payload,
            uploads,
            editing=False,
            author_permissions=perms,
            allow_ephemeral=False,
        )
        return self._store_new(draft)

    def _same_nonce(self, channel_id: int, author_id: int, payload: JSON) -> Message | None:
        """With ``enforce_nonce``, the author's message already sent with this nonce lately.

        Discord then answers with that message and creates nothing (resources/message.mdx:
        "in the past few minutes"; the exact window is not documented, five minutes here).
        """
        nonce = payload.get("nonce")
        if nonce is None:
            return None
        if len(str(nonce)) > NONCE_LIMIT:
            raise invalid_form(
                "nonce", "BASE_TYPE_MAX_LENGTH", f"Must be {NONCE_LIMIT} or fewer in length."
            )
        if not payload.get("enforce_nonce"):
            return None
        since = self.clock.now() - NONCE_WINDOW
        for message_id in reversed(self._channel_log.get(channel_id, [])):
            message = self.messages[message_id]
            if message.timestamp < since:
                break
            if message.author_id == author_id and message.nonce == str(nonce):
                return message
        return None

    def visible_message(self, channel_id: int, message_id: int) -> Message:
        """A non-ephemeral message of a channel (404 Unknown Message)."""
        self.world.channel(channel_id)
        message = self.messages.get(message_id)
        if message is None or message.channel_id != channel_id or message.ephemeral_to is not None:
            raise not_found(UNKNOWN_MESSAGE, "Message")
        return message

    def get_channel_message(self, channel_id: int, message_id: int, actor_id: int) -> Message:
        """``GET /channels/{id}/messages/{mid}``."""
        self._require(actor_id, channel_id, Permission.READ_MESSAGE_HISTORY)
        return self.visible_message(channel_id, message_id)

    def edit_channel_message(
        self, channel_id: int, message_id: int, actor_id: int, payload: JSON, uploads: list[Upload]
    ) -> Message:
        """``PATCH /channels/{id}/messages/{mid}``."""
        perms = self._require(actor_id, channel_id, Permission(0))
        message = self.visible_message(channel_id, message_id)
        # Interaction replies are authored by the bot user, so it may edit them here too.
        if message.author_id != actor_id:
            raise DiscordHTTPError(
                403, CANNOT_EDIT_OTHERS_MESSAGE, "Cannot edit a message authored by another user"
            )
        if uploads and not perms & Permission.ATTACH_FILES:
            raise missing_permissions()
        self._count_old_edit(message, "/channels/{channel_id}/messages/{message_id}")
        draft = self._compose(
            message, payload, uploads, editing=True, author_permissions=perms, allow_ephemeral=False
        )
        return self._store_edit(draft)

    def delete_channel_message(self, channel_id: int, message_id: int, actor_id: int) -> None:
        """``DELETE /channels/{id}/messages/{mid}``."""
        perms = self._require(actor_id, channel_id, Permission(0))
        message = self.visible_message(channel_id, message_id)
        if message.author_id != actor_id and not perms & Permission.MANAGE_MESSAGES:
            raise missing_permissions()
        self._remove(message)

    def history(
        self,
        channel_id: int,
        actor_id: int,
        *,
        limit: int,
        before: int | None,
        after: int | None,
        around: int | None,
    ) -> list[Message]:
        """``GET /channels/{id}/messages``: newest first, like Discord."""
        perms = self._require(actor_id, channel_id, Permission(0))
        if not perms & Permission.READ_MESSAGE_HISTORY:
            return []
        limit = max(1, min(limit, 100))
        log = self.channel_log(channel_id)
        if around is not None:
            older = [m for m in log if m.id <= around][-((limit + 1) // 2) :]
            newer = [m for m in log if m.id > around][: limit // 2]
            chosen = older + newer
        elif after is not None:
            chosen = [m for m in log if m.id > after][:limit]
        else:
            if before is not None:
                log = [m for m in log if m.id < before]
            chosen = log[-limit:]
        return list(reversed(chosen))

    def user_can(self, user_id: int, channel_id: int, permission: Permission) -> bool:
        """Whether a user has a permission in a channel."""
        return bool(self.world.channel_permissions(user_id, channel_id) & permission)


def _unsigned_media(embed: JSON, message: Message) -> JSON:
    """An embed whose attachment images point back at ``attachment://`` (to sign afresh)."""
    out = dict(embed)
    for key in ("image", "thumbnail"):
        media = out.get(key)
        url = media.get("url") if isinstance(media, dict) else None
        if not isinstance(url, str) or "?ex=" not in url:
            continue
        path = url.split("?", 1)[0]
        for stored in message.attachments:
            if path.endswith(f"/attachments/{stored.channel_id}/{stored.id}/{stored.filename}"):
                out[key] = {"url": f"attachment://{stored.filename}"}
    return out
