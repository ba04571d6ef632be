"""REST routes about places: interaction callbacks and webhooks, channels, the guild."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

from .errors import (
    missing_access,
)
from .permissions import Permission
from .wire import flag, json_response, no_content, read_body, snowflake_param

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from .rest_core import RestCore as _Base
else:
    _Base = object


class ChannelRoutes(_Base):
    """Interaction responses, channel messages and the guild's objects."""

    # interactions ------------------------------------------------------------------------

    async def callback(self, request: web.Request) -> web.StreamResponse:
        """``POST /interactions/{id}/{token}/callback``."""
        body, uploads = await read_body(request)
        record, message = self.service.callback(
            snowflake_param(request, "interaction_id"), request.match_info["token"], body, uploads
        )
        if flag(request, "with_response"):
            return json_response(self.service.callback_resource(record, message))
        return no_content()

    async def execute_webhook(self, request: web.Request) -> web.StreamResponse:
        """``POST /webhooks/{app}/{token}``: an interaction follow-up."""
        record = self._webhook(request, "POST", "/webhooks/{application_id}/{token}")
        body, uploads = await read_body(request)
        message = self.service.execute_followup(record, body, uploads)
        if flag(request, "wait"):
            return json_response(self.service.render(message))
        return no_content()

    async def get_webhook_message(self, request: web.Request) -> web.StreamResponse:
        """``GET /webhooks/{app}/{token}/messages/{id|@original}``."""
        record = self._webhook(
            request, "GET", "/webhooks/{application_id}/{token}/messages/{message_id}"
        )
        message = self.service.read_webhook_message(record, request.match_info["message_id"])
        return json_response(self.service.render(message))

    async def edit_webhook_message(self, request: web.Request) -> web.StreamResponse:
        """``PATCH /webhooks/{app}/{token}/messages/{id|@original}``."""
        record = self._webhook(
            request, "PATCH", "/webhooks/{application_id}/{token}/messages/{message_id}"
        )
        body, uploads = await read_body(request)
        message = self.service.edit_webhook_message(
            record, request.match_info["message_id"], body, uploads
        )
        return json_response(self.service.render(message))

    async def delete_webhook_message(self, request: web.Request) -> web.StreamResponse:
        """``DELETE /webhooks/{app}/{token}/messages/{id|@original}``."""
        record = self._webhook(
            request, "DELETE", "/webhooks/{application_id}/{token}/messages/{message_id}"
        )
        self.service.delete_webhook_message(record, request.match_info["message_id"])
        return no_content()

    # channels ----------------------------------------------------------------------------

    async def get_channel(self, request: web.Request) -> web.StreamResponse:
        """``GET /channels/{id}``."""
        world = self.service.world
        channel = world.channel(snowflake_param(request, "channel_id"))
        if channel.guild_id is not None and not self.service.user_can(
            self._bot_id(), channel.id, Permission.VIEW_CHANNEL
        ):
            raise missing_access()
        return json_response(channel.to_dict(world.users))

    async def typing(self, request: web.Request) -> web.StreamResponse:
        """``POST /channels/{id}/typing``."""
        self.service.world.channel(snowflake_param(request, "channel_id"))
        return no_content()

    async def get_history(self, request: web.Request) -> web.StreamResponse:
        """``GET /channels/{id}/messages``."""

        def opt(name: str) -> int | None:
            value = request.query.get(name)
            return int(value) if value and value.isdigit() else None

        messages = self.service.history(
            snowflake_param(request, "channel_id"),
            self._bot_id(),
            limit=opt("limit") or 50,
            before=opt("before"),
            after=opt("after"),
            around=opt("around"),
        )
        return json_response([self.service.render(m) for m in messages])

    async def create_message(self, request: web.Request) -> web.StreamResponse:
        """``POST /channels/{id}/messages``."""
        channel_id = snowflake_param(request, "channel_id")
        self.service.world.channel(channel_id)
        body, uploads = await read_body(request)
        message = self.service.create_channel_message(channel_id, self._bot_id(), body, uploads)
        return json_response(self.service.render(message))

    async def get_message(self, request: web.Request) -> web.StreamResponse:
        """``GET /channels/{id}/messages/{mid}``."""
        message = self.service.get_channel_message(
            snowflake_param(request, "channel_id"),
            snowflake_param(request, "message_id"),
            self._bot_id(),
        )
        return json_response(self.service.render(message))

    async def edit_message(self, request: web.Request) -> web.StreamResponse:
        """``PATCH /channels/{id}/messages/{mid}``."""
        channel_id = snowflake_param(request, "channel_id")
        message_id = snowflake_param(request, "message_id")
        body, uploads = await read_body(request)
        message = self.service.edit_channel_message(
            channel_id, message_id, self._bot_id(), body, uploads
        )
        return json_response(self.service.render(message))

    async def delete_message(self, request: web.Request) -> web.StreamResponse:
        """``DELETE /channels/{id}/messages/{mid}``."""
        self.service.delete_channel_message(
            snowflake_param(request, "channel_id"),
            snowflake_param(request, "message_id"),
            self._bot_id(),
        )
        return no_content()

    # guild -------------------------------------------------------------------------------

    async def get_guild(self, request: web.Request) -> web.StreamResponse:
        """``GET /guilds/{id}``."""
        self._check_guild(request)
        data = self.service.world.guild_dict()
        if flag(request, "with_counts"):
            count = len(self.service.world.members)
            data.update(approximate_member_count=count, approximate_presence_count=count)
        return json_response(data)

    async def get_guild_channels(self, request: web.Request) -> web.StreamResponse:
        """``GET /guilds/{id}/channels``."""
        self._check_guild(request)
        return json_response([c.to_dict() for c in self.service.world.text_channels()])

    async def get_roles(self, request: web.Request) -> web.StreamResponse:
        """``GET /guilds/{id}/roles``."""
        self._check_guild(request)
        return json_response([r.to_dict() for r in self.service.world.roles.values()])

    async def get_member(self, request: web.Request) -> web.StreamResponse:
        """``GET /guilds/{id}/members/{user}``."""
        self._check_guild(request)
        return json_response(self.service.world.member_dict(snowflake_param(request, "user_id")))
