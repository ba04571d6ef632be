"""Interactions on the emulated Discord: creation, the initial response, the webhook."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .command_rules import LOCALES
from .errors import (
    ALREADY_ACKNOWLEDGED,
    INVALID_WEBHOOK_TOKEN,
    JSON,
    UNKNOWN_INTERACTION,
    UNKNOWN_MESSAGE,
    UNKNOWN_WEBHOOK,
    DiscordHTTPError,
    invalid_form,
    not_found,
)
from .interactions import (
    APPLICATION_COMMAND,
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    MESSAGE_COMPONENT,
    MODAL,
    MODAL_SUBMIT,
    UPDATE_MESSAGE,
    InteractionRecord,
    RejectedCall,
)
from .messages import (
    CHAT_INPUT_COMMAND,
    CONTEXT_MENU_COMMAND,
    DEFAULT,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    InteractionLink,
    Message,
    Upload,
    check_not_empty,
)
from .modals import check_modal
from .permissions import Permission

if TYPE_CHECKING:
    from .message_flow import MessageFlow as _Base
else:
    _Base = object

CALLBACK_ROUTE = "/interactions/{interaction_id}/{token}/callback"
FOLLOWUP_ROUTE = "/webhooks/{application_id}/{token}"
WEBHOOK_MESSAGE_ROUTE = "/webhooks/{application_id}/{token}/messages/{message_id}"


class InteractionFlow(_Base):
    """What interactions do: their creation, acknowledgement and webhook calls."""

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
        command_type: int = 1,
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
            # Interactions > Receiving and Responding, "Interaction Object": ``locale`` is the
            # invoking user's selected language, ``guild_locale`` the guild's preferred one.
            "locale": world.user(user_id).locale,
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
                guild={"id": str(guild_id), "locale": world.preferred_locale, "features": []},
                guild_locale=world.preferred_locale,
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
            created_at=self.clock.monotonic(),
            command_type=command_type,
        )
        self.interactions[interaction_id] = record
        self._by_token[token] = record
        loop = asyncio.get_running_loop()
        record.deadline = loop.call_later(self.limits.ack_deadline, self._deadline_passed, record)
        self.listener.interaction_created(record)
        return record

    # languages ------------------------------------------------------------------------------

    def set_user_locale(self, user_id: int, locale: str) -> None:
        """The language a user's Discord client is set to (their next interactions carry it)."""
        if locale not in LOCALES:
            raise ValueError(f"{locale!r} is not one of Discord's locales")
        self.world.user(user_id).locale = locale

    def set_guild_locale(self, locale: str) -> None:
        """The server's preferred language, as its settings set it; the bot hears GUILD_UPDATE."""
        if locale not in LOCALES:
            raise ValueError(f"{locale!r} is not one of Discord's locales")
        self.world.preferred_locale = locale
        self.listener.guild_updated()

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
        age = self.clock.monotonic() - record.created_at
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
        allowed = {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE}
        # Callback types: MODAL is "Not available for MODAL_SUBMIT and PING interactions";
        # the two message updates are for component interactions (and modals opened from
        # a component, which carry its message).
        if record.type != MODAL_SUBMIT:
            allowed.add(MODAL)
        if record.type == MESSAGE_COMPONENT or (
            record.type == MODAL_SUBMIT and record.source_message_id is not None
        ):
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
        record.acknowledged_at = self.clock.monotonic()
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
            record.modal = check_modal(body.get("data"))
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
        # "Interaction Callback Resource Object": message is "Only present if type is either
        # CHANNEL_MESSAGE_WITH_SOURCE or UPDATE_MESSAGE" (not for deferrals or modals).
        if message is not None and kind in (CHANNEL_MESSAGE, UPDATE_MESSAGE):
            resource["message"] = self.render(message)
        return {"interaction": interaction, "resource": resource}

    def _bot_perms(self, channel_id: int) -> int:
        # Interaction replies go through the application's webhook: channel overwrites do
        # not stop them or their embeds; @everyone still needs the bot's permission.
        return self.world.channel_permissions(self.bot_id, channel_id) | Permission.EMBED_LINKS

    def _interaction_base(self, record: InteractionRecord) -> Message:
        message = self._blank(record.channel_id, self.bot_id)
        if record.type == APPLICATION_COMMAND:
            chat_input = record.command_type == 1
            message.type = CHAT_INPUT_COMMAND if chat_input else CONTEXT_MENU_COMMAND
        else:
            message.type = DEFAULT
        message.webhook_id = record.application_id
        message.application_id = record.application_id
        message.interaction = InteractionLink(
            id=record.id,
            type=record.type,
            user_id=record.user_id,
            name=record.name,
            command_type=record.command_type,
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
        if self.clock.monotonic() - record.created_at > self.limits.token_lifetime:
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
        self._count_old_edit(message, WEBHOOK_MESSAGE_ROUTE)
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
