"""What each call does to the emulated Discord: messages, interactions, their rules."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from .cdn import AttachmentStore
from .commands import CommandRegistry
from .errors import (
    ALREADY_ACKNOWLEDGED,
    CANNOT_EDIT_OTHERS_MESSAGE,
    CANNOT_MESSAGE_USER,
    INVALID_WEBHOOK_TOKEN,
    JSON,
    UNKNOWN_INTERACTION,
    UNKNOWN_MESSAGE,
    UNKNOWN_WEBHOOK,
    DiscordHTTPError,
    invalid_form,
    missing_access,
    missing_permissions,
    not_found,
)
from .interactions import (
    APPLICATION_COMMAND,
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    MESSAGE_COMPONENT,
    MODAL,
    UPDATE_MESSAGE,
    InteractionRecord,
    RejectedCall,
)
from .messages import (
    CHAT_INPUT_COMMAND,
    DEFAULT,
    FLAG_COMPONENTS_V2,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    FLAG_SUPPRESS_EMBEDS,
    FLAG_SUPPRESS_NOTIFICATIONS,
    REPLY,
    SETTABLE_FLAGS,
    InteractionLink,
    Message,
    Upload,
    build_attachments,
    check_components,
    check_content,
    check_embeds,
    check_not_empty,
    check_upload_sizes,
    compute_mentions,
    message_to_dict,
    resolve_embed_attachments,
)
from .permissions import Permission
from .snowflake import SnowflakeGenerator, utcnow
from .state import DM_CHANNEL, Channel, Member, World

CALLBACK_ROUTE = "/interactions/{interaction_id}/{token}/callback"
FOLLOWUP_ROUTE = "/webhooks/{application_id}/{token}"
WEBHOOK_MESSAGE_ROUTE = "/webhooks/{application_id}/{token}/messages/{message_id}"


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

    def member_updated(self, member: Member) -> None: ...


class DiscordService:
    """The emulated Discord's behaviour behind the REST routes and the driver API."""

    def __init__(
        self,
        *,
        world: World,
        store: AttachmentStore,
        commands: CommandRegistry,
        ids: SnowflakeGenerator,
        limits: Limits,
        listener: Listener,
    ) -> None:
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

    def _store_edit(self, draft: Message, *, mark_edited: bool = True) -> Message:
        now = utcnow()
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
            timestamp=utcnow(),
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

    # interactions: creation --------------------------------------------------------------

    def start_interaction(
        self,
        *,
        kind: int,
        user_id: int,
        channel_id: int,
        data: JSON,
        name: str | None,
        custom_id: str | None,
        source: Message | None,
        context: int,
    ) -> InteractionRecord:
        """Create an interaction, dispatch it, and start its acknowledgement clock."""
        world = self.world
        channel = world.channel(channel_id)
        interaction_id = self.ids.next()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        app_id = world.cast.application_id
        guild_id = channel.guild_id
        payload: JSON = {
            "id": str(interaction_id),
            "application_id": str(app_id),
            "type": kind,
            "data": data,
            "token": token,
            "version": 1,
            "locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.limits.upload_limit,
            "context": context,
            "authorizing_integration_owners": {"0": str(guild_id) if guild_id else "0"},
            "channel_id": str(channel_id),
        }
        channel_data = channel.to_dict(world.users)
        if guild_id is not None:
            member_perms = world.channel_permissions(user_id, channel_id)
            channel_data["permissions"] = str(member_perms)
            payload.update(
                guild_id=str(guild_id),
                guild={"id": str(guild_id), "locale": "en-US", "features": []},
                guild_locale="en-US",
                member=world.resolved_member(user_id, channel_id),
                app_permissions=str(world.channel_permissions(self.bot_id, channel_id)),
            )
        else:
            payload.update(
                user=world.user(user_id).to_dict(),
                app_permissions=str(world.channel_permissions(self.bot_id, channel_id)),
            )
        payload["channel"] = channel_data
        if source is not None:
            payload["message"] = self.render(source)
        record = InteractionRecord(
            id=interaction_id,
            token=token,
            type=kind,
            application_id=app_id,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            name=name,
            custom_id=custom_id,
            source_message_id=source.id if source else None,
            payload=payload,
        )
        self.interactions[interaction_id] = record
        self._by_token[token] = record
        loop = asyncio.get_running_loop()
        record.deadline = loop.call_later(self.limits.ack_deadline, self._deadline_passed, record)
        self.listener.interaction_created(record)
        return record

    def _deadline_passed(self, record: InteractionRecord) -> None:
        record.deadline = None
        if not record.acknowledged and not record.failed:
            record.failed = True
            record.touch()
            self.listener.interaction_changed(record, "failed")

    def cancel_timers(self) -> None:
        """Stop every pending acknowledgement clock (shutdown)."""
        for record in self.interactions.values():
            if record.deadline is not None:
                record.deadline.cancel()
                record.deadline = None

    @contextlib.contextmanager
    def _recorded(self, record: InteractionRecord, method: str, route: str) -> Iterator[None]:
        """Keep any refusal on the interaction's record, for tests to read."""
        try:
            yield
        except DiscordHTTPError as exc:
            self._reject(record, method, route, exc)
            raise

    def _reject(
        self, record: InteractionRecord | None, method: str, route: str, error: DiscordHTTPError
    ) -> DiscordHTTPError:
        if record is not None:
            record.rejected.append(
                RejectedCall(method, route, error.status, error.code, error.message)
            )
            record.touch()
        return error

    # interactions: the initial response --------------------------------------------------

    def callback(
        self, interaction_id: int, token: str, body: JSON, uploads: list[Upload]
    ) -> tuple[InteractionRecord, Message | None]:
        """``POST /interactions/{id}/{token}/callback``."""
        route = CALLBACK_ROUTE
        record = self.interactions.get(interaction_id)
        unknown = not_found(UNKNOWN_INTERACTION, "interaction")
        if record is None or not secrets.compare_digest(record.token.encode(), token.encode()):
            raise unknown
        age = time.monotonic() - record.created_at
        if not record.acknowledged and age > self.limits.ack_deadline:
            self._deadline_passed(record)
        if record.failed or age > self.limits.token_lifetime:
            raise self._reject(record, "POST", route, unknown)
        if record.acknowledged:
            raise self._reject(
                record,
                "POST",
                route,
                DiscordHTTPError(
                    400, ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged."
                ),
            )
        kind = body.get("type")
        allowed = {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, MODAL}
        if record.type == MESSAGE_COMPONENT:
            allowed |= {DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE}
        if kind not in allowed:
            raise self._reject(
                record,
                "POST",
                route,
                invalid_form(
                    "type", "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid interaction response type"
                ),
            )
        with self._recorded(record, "POST", route):
            message = self._respond(record, int(kind), body, uploads)
        record.acknowledged_at = time.monotonic()
        if record.deadline is not None:
            record.deadline.cancel()
            record.deadline = None
        record.response = {"type": kind, "data": body.get("data") or {}}
        record.touch()
        self.listener.interaction_changed(record, "response")
        return record, message

    def _respond(
        self, record: InteractionRecord, kind: int, body: JSON, uploads: list[Upload]
    ) -> Message | None:
        """Carry out an initial response of callback type ``kind``."""
        data: JSON = body.get("data") or {}
        message: Message | None = None
        bot_perms = self._bot_perms(record.channel_id)
        if kind == CHANNEL_MESSAGE:
            message = self._interaction_message(record, data, uploads, bot_perms)
            record.original_message_id = message.id
        elif kind == DEFERRED_CHANNEL_MESSAGE:
            draft = self._interaction_base(record)
            draft.flags = FLAG_LOADING | (int(data.get("flags") or 0) & FLAG_EPHEMERAL)
            if draft.flags & FLAG_EPHEMERAL:
                draft.ephemeral_to = record.user_id
            message = self._store_new(draft)
            record.original_message_id = message.id
        elif kind == DEFERRED_UPDATE_MESSAGE:
            record.original_message_id = record.source_message_id
        elif kind == UPDATE_MESSAGE:
            source = self.messages.get(record.source_message_id or 0)
            if source is None:
                raise not_found(UNKNOWN_MESSAGE, "Message")
            draft = self._compose(
                source,
                data,
                uploads,
                editing=True,
                author_permissions=bot_perms,
                allow_ephemeral=False,
            )
            message = self._store_edit(draft)
            record.original_message_id = source.id
        else:
            for key in ("custom_id", "title", "components"):
                if not data.get(key):
                    raise invalid_form(
                        f"data.{key}", "BASE_TYPE_REQUIRED", "This field is required"
                    )
            record.modal = data
        return message

    def callback_resource(self, record: InteractionRecord, message: Message | None) -> JSON:
        """The body of a ``?with_response=true`` callback answer."""
        kind = record.response_type
        interaction: JSON = {"id": str(record.id), "type": record.type}
        if message is not None:
            interaction["response_message_id"] = str(message.id)
            interaction["response_message_loading"] = bool(message.flags & FLAG_LOADING)
            interaction["response_message_ephemeral"] = message.ephemeral
        resource: JSON = {"type": kind}
        if message is not None:
            resource["message"] = self.render(message)
        return {"interaction": interaction, "resource": resource}

    def _bot_perms(self, channel_id: int) -> int:
        # Interaction replies go through the application's webhook: channel overwrites do
        # not stop them or their embeds; @everyone still needs the bot's permission.
        return self.world.channel_permissions(self.bot_id, channel_id) | Permission.EMBED_LINKS

    def _interaction_base(self, record: InteractionRecord) -> Message:
        message = self._blank(record.channel_id, self.bot_id)
        message.type = CHAT_INPUT_COMMAND if record.type == APPLICATION_COMMAND else DEFAULT
        message.webhook_id = record.application_id
        message.application_id = record.application_id
        message.interaction = InteractionLink(
            id=record.id,
            type=record.type,
            user_id=record.user_id,
            name=record.name,
            guild_id=record.guild_id,
            original_response_message_id=None,
            interacted_message_id=record.source_message_id,
        )
        return message

    def _interaction_message(
        self, record: InteractionRecord, payload: JSON, uploads: list[Upload], bot_perms: int
    ) -> Message:
        base = self._interaction_base(record)
        if record.original_message_id is not None and base.interaction is not None:
            base.interaction.original_response_message_id = record.original_message_id
        draft = self._compose(
            base,
            payload,
            uploads,
            editing=False,
            author_permissions=bot_perms,
            allow_ephemeral=True,
        )
        if draft.flags & FLAG_EPHEMERAL:
            draft.ephemeral_to = record.user_id
        return self._store_new(draft)

    # interactions: the webhook -----------------------------------------------------------

    def webhook_record(
        self, application_id: int, token: str, method: str, route: str
    ) -> InteractionRecord:
        """The interaction behind ``/webhooks/{app}/{token}``, enforcing the token's life."""
        record = self._by_token.get(token)
        if record is None or record.application_id != application_id:
            raise not_found(UNKNOWN_WEBHOOK, "Webhook")
        if time.monotonic() - record.created_at > self.limits.token_lifetime:
            raise self._reject(
                record,
                method,
                route,
                DiscordHTTPError(401, INVALID_WEBHOOK_TOKEN, "Invalid Webhook Token"),
            )
        if not record.acknowledged:
            raise self._reject(record, method, route, not_found(UNKNOWN_WEBHOOK, "Webhook"))
        return record

    def execute_followup(
        self, record: InteractionRecord, payload: JSON, uploads: list[Upload]
    ) -> Message:
        """``POST /webhooks/{app}/{token}``."""
        with self._recorded(record, "POST", FOLLOWUP_ROUTE):
            return self._followup(record, payload, uploads)

    def _followup(self, record: InteractionRecord, payload: JSON, uploads: list[Upload]) -> Message:
        original = self.messages.get(record.original_message_id or 0)
        bot_perms = self._bot_perms(record.channel_id)
        if (
            record.response_type == DEFERRED_CHANNEL_MESSAGE
            and original is not None
            and original.flags & FLAG_LOADING
        ):
            # Discord turns the first follow-up after a "thinking" defer into that message.
            fill = {k: v for k, v in payload.items() if k != "flags"}
            draft = self._compose(
                original,
                fill,
                uploads,
                editing=True,
                author_permissions=bot_perms,
                allow_ephemeral=False,
            )
            draft.flags &= ~FLAG_LOADING
            check_not_empty(draft)
            # Filling a "thinking" message is when its mentions notify people.
            draft.pinged_user_ids = self._pinged(draft)
            filled = self._store_edit(draft, mark_edited=False)
            record.touch()
            return filled
        message = self._interaction_message(record, payload, uploads, bot_perms)
        record.followup_ids.append(message.id)
        record.touch()
        return message

    def read_webhook_message(self, record: InteractionRecord, ref: str) -> Message:
        """``GET /webhooks/{app}/{token}/messages/{ref}``."""
        with self._recorded(record, "GET", WEBHOOK_MESSAGE_ROUTE):
            return self.webhook_message(record, ref)

    def webhook_message(self, record: InteractionRecord, ref: str) -> Message:
        """The message ``@original`` or an id names for this interaction (404 Unknown Message)."""
        if ref == "@original":
            target = record.original_message_id
        else:
            try:
                target = int(ref)
            except ValueError:
                raise not_found(UNKNOWN_MESSAGE, "Message") from None
            owned = {record.original_message_id, record.source_message_id, *record.followup_ids}
            if target not in owned:
                raise not_found(UNKNOWN_MESSAGE, "Message")
        message = self.messages.get(target or 0)
        if message is None:
            raise not_found(UNKNOWN_MESSAGE, "Message")
        return message

    def edit_webhook_message(
        self, record: InteractionRecord, ref: str, payload: JSON, uploads: list[Upload]
    ) -> Message:
        """``PATCH /webhooks/{app}/{token}/messages/{ref}``."""
        with self._recorded(record, "PATCH", WEBHOOK_MESSAGE_ROUTE):
            return self._edit_webhook_message(record, ref, payload, uploads)

    def _edit_webhook_message(
        self, record: InteractionRecord, ref: str, payload: JSON, uploads: list[Upload]
    ) -> Message:
        message = self.webhook_message(record, ref)
        loading = bool(message.flags & FLAG_LOADING)
        draft = self._compose(
            message,
            payload,
            uploads,
            editing=True,
            author_permissions=self._bot_perms(record.channel_id),
            allow_ephemeral=False,
        )
        draft.flags &= ~FLAG_LOADING
        if loading:
            check_not_empty(draft)
            draft.pinged_user_ids = self._pinged(draft)
        updated = self._store_edit(draft, mark_edited=not loading)
        record.touch()
        return updated

    def delete_webhook_message(self, record: InteractionRecord, ref: str) -> None:
        """``DELETE /webhooks/{app}/{token}/messages/{ref}``."""
        with self._recorded(record, "DELETE", WEBHOOK_MESSAGE_ROUTE):
            message = self.webhook_message(record, ref)
        self._remove(message)
        record.touch()

    # people ------------------------------------------------------------------------------

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

    def user_can(self, user_id: int, channel_id: int, permission: Permission) -> bool:
        """Whether a user has a permission in a channel."""
        return bool(self.world.channel_permissions(user_id, channel_id) & permission)
