"""The emulated REST API: Discord's routes, bodies, auth and error answers."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from .commands import CommandRegistry
from .errors import (
    JSON,
    UNKNOWN_GUILD,
    DiscordHTTPError,
    invalid_form,
    missing_access,
    not_found,
    route_not_found,
    unauthorized,
)
from .interactions import InteractionRecord
from .messages import Upload
from .permissions import Permission
from .service import DiscordService

log = logging.getLogger(__name__)

API_PREFIX = r"/api/{version:v\d+}"
_FILE_FIELD = re.compile(r"files\[(\d+)\]")
_INVALID_JSON = 50109
_UNKNOWN_APPLICATION = 10002

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON answer whose Content-Type is exactly ``application/json``, as Discord's."""
    return web.Response(
        status=status,
        body=json.dumps(data).encode(),
        headers={"Content-Type": "application/json"},
    )


def no_content() -> web.Response:
    """204 No Content."""
    return web.Response(status=204)


def error_response(error: DiscordHTTPError) -> web.Response:
    """An error answer with Discord's JSON body."""
    return json_response(error.body(), status=error.status)


def flag(request: web.Request, name: str) -> bool:
    """A boolean query parameter (``1``/``true``)."""
    return request.query.get(name, "").lower() in ("1", "true")


@dataclass
class RequestRecord:
    """One request the emulator answered."""

    method: str
    route: str
    path: str
    status: int
    code: int | None
    at: float


@dataclass
class RequestLog:
    """Every request, and those to routes the emulator does not know."""

    records: list[RequestRecord] = field(default_factory=list)
    unknown: list[RequestRecord] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)

    def add(self, record: RequestRecord) -> None:
        """Record a request."""
        self.records.append(record)

    def count(self, method: str | None = None, route: str | None = None) -> int:
        """How many requests matched a method and/or a route template."""
        return sum(
            1
            for r in self.records
            if (method is None or r.method == method.upper())
            and (route is None or r.route == route)
        )


async def read_body(request: web.Request) -> tuple[JSON, list[Upload]]:
    """A JSON body, or a multipart body of ``payload_json`` plus ``files[n]``."""
    if request.content_type.startswith("multipart/"):
        payload: JSON = {}
        uploads: list[Upload] = []
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            name = part.name or ""
            if name == "payload_json":
                payload = _parse_json(await part.text())
                continue
            match = _FILE_FIELD.fullmatch(name)
            if match is None:
                continue
            data = bytes(await part.read(decode=False))
            uploads.append(
                Upload(
                    index=int(match.group(1)),
                    filename=part.filename or "unknown",
                    data=data,
                    content_type=part.headers.get("Content-Type"),
                )
            )
        return payload, uploads
    raw = await request.read()
    if not raw:
        return {}, []
    return _parse_json(raw.decode("utf-8", errors="replace")), []


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise DiscordHTTPError(
            400, _INVALID_JSON, "The request body contains invalid JSON."
        ) from None


def _snowflake(request: web.Request, key: str) -> int:
    try:
        return int(request.match_info[key])
    except ValueError:
        raise invalid_snowflake(key) from None


def invalid_snowflake(key: str) -> DiscordHTTPError:
    """The 400 Discord answers for a path id that is not a snowflake."""
    return invalid_form(key, "NUMBER_TYPE_COERCE", "Value is not snowflake.")


class RestApi:
    """Registers Discord's REST routes on an aiohttp application."""

    def __init__(
        self,
        *,
        service: DiscordService,
        commands: CommandRegistry,
        log_: RequestLog,
        gateway_url: Callable[[], str],
        on_commands_synced: Callable[[int | None], None],
    ) -> None:
        self.service = service
        self.commands = commands
        self.log = log_
        self._gateway_url = gateway_url
        self._on_commands_synced = on_commands_synced

    def _bot_id(self) -> int:
        return int(self.service.world.cast.bot_user_id)

    def _app_id(self) -> int:
        return int(self.service.world.cast.application_id)

    # registration ------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        """Add every API route, then the catch-all answering 404 for anything else."""
        routes: list[tuple[str, str, Handler, bool]] = [
            ("GET", "/users/@me", self.get_me, True),
            ("POST", "/users/@me/channels", self.create_dm, True),
            ("GET", "/users/{user_id:\\d+}", self.get_user, True),
            ("GET", "/oauth2/applications/@me", self.get_application, True),
            ("GET", "/applications/@me", self.get_application, True),
            ("GET", "/gateway", self.get_gateway, False),
            ("GET", "/gateway/bot", self.get_gateway_bot, True),
            ("GET", "/applications/{application_id:\\d+}/commands", self.get_global_commands, True),
            ("PUT", "/applications/{application_id:\\d+}/commands", self.put_global_commands, True),
            (
                "GET",
                "/applications/{application_id:\\d+}/guilds/{guild_id:\\d+}/commands",
                self.get_guild_commands,
                True,
            ),
            (
                "PUT",
                "/applications/{application_id:\\d+}/guilds/{guild_id:\\d+}/commands",
                self.put_guild_commands,
                True,
            ),
            ("POST", "/interactions/{interaction_id:\\d+}/{token}/callback", self.callback, False),
            ("POST", "/webhooks/{application_id:\\d+}/{token}", self.execute_webhook, False),
            (
                "GET",
                "/webhooks/{application_id:\\d+}/{token}/messages/{message_id:(?:\\d+|@original)}",
                self.get_webhook_message,
                False,
            ),
            (
                "PATCH",
                "/webhooks/{application_id:\\d+}/{token}/messages/{message_id:(?:\\d+|@original)}",
                self.edit_webhook_message,
                False,
            ),
            (
                "DELETE",
                "/webhooks/{application_id:\\d+}/{token}/messages/{message_id:(?:\\d+|@original)}",
                self.delete_webhook_message,
                False,
            ),
            ("GET", "/channels/{channel_id:\\d+}", self.get_channel, True),
            ("POST", "/channels/{channel_id:\\d+}/typing", self.typing, True),
            ("GET", "/channels/{channel_id:\\d+}/messages", self.get_history, True),
            ("POST", "/channels/{channel_id:\\d+}/messages", self.create_message, True),
            (
                "GET",
                "/channels/{channel_id:\\d+}/messages/{message_id:\\d+}",
                self.get_message,
                True,
            ),
            (
                "PATCH",
                "/channels/{channel_id:\\d+}/messages/{message_id:\\d+}",
                self.edit_message,
                True,
            ),
            (
                "DELETE",
                "/channels/{channel_id:\\d+}/messages/{message_id:\\d+}",
                self.delete_message,
                True,
            ),
            ("GET", "/guilds/{guild_id:\\d+}", self.get_guild, True),
            ("GET", "/guilds/{guild_id:\\d+}/channels", self.get_guild_channels, True),
            ("GET", "/guilds/{guild_id:\\d+}/roles", self.get_roles, True),
            ("GET", "/guilds/{guild_id:\\d+}/members/{user_id:\\d+}", self.get_member, True),
        ]
        for method, path, handler, auth in routes:
            # Ids only match digits, so e.g. /channels/1/messages/pins is an unknown route.
            template = re.sub(r":[^}]+}", "}", path)
            app.router.add_route(
                method, API_PREFIX + path, self._wrap(method, template, handler, auth)
            )

    def add_catch_all(self, app: web.Application) -> None:
        """Answer every unmatched request with Discord's 404 and record it."""
        app.router.add_route("*", "/{tail:.*}", self.unknown_route)

    def _wrap(self, method: str, route: str, handler: Handler, auth: bool) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            code: int | None = None
            try:
                if auth:
                    self._check_auth(request)
                response = await handler(request)
            except DiscordHTTPError as exc:
                code = exc.code
                response = error_response(exc)
            except web.HTTPException:
                raise
            except Exception as exc:
                # An emulator bug: answer like Discord's 500 and keep it for tests to see.
                log.exception("discord emulator failed on %s %s", method, request.path)
                self.log.crashes.append(f"{method} {request.path}: {exc!r}")
                response = json_response({"message": "500: Internal Server Error", "code": 0}, 500)
            self.log.add(
                RequestRecord(method, route, request.path, response.status, code, time.time())
            )
            return response

        return run

    def _check_auth(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bot {self.service.world.bot_token}":
            raise unauthorized()

    async def unknown_route(self, request: web.Request) -> web.StreamResponse:
        """404 with Discord's body; recorded so a test notices the bot used a missing route."""
        error = route_not_found()
        record = RequestRecord(request.method, "", request.path, 404, error.code, time.time())
        self.log.add(record)
        self.log.unknown.append(record)
        log.warning("discord emulator: unknown route %s %s", request.method, request.path)
        return error_response(error)

    # users, application, gateway ---------------------------------------------------------

    async def get_me(self, request: web.Request) -> web.StreamResponse:
        """``GET /users/@me``."""
        user = self.service.world.user(self._bot_id()).to_dict()
        user.update(verified=True, mfa_enabled=False, email=None, locale="en-US")
        return json_response(user)

    async def get_user(self, request: web.Request) -> web.StreamResponse:
        """``GET /users/{id}``."""
        return json_response(self.service.world.user(_snowflake(request, "user_id")).to_dict())

    async def create_dm(self, request: web.Request) -> web.StreamResponse:
        """``POST /users/@me/channels``: the DM channel with a user."""
        body, _ = await read_body(request)
        try:
            recipient = int(body["recipient_id"])
        except (KeyError, TypeError, ValueError):
            raise invalid_snowflake("recipient_id") from None
        world = self.service.world
        channel = world.dm_channel_for(recipient)
        return json_response(channel.to_dict(world.users))

    async def get_application(self, request: web.Request) -> web.StreamResponse:
        """``GET /oauth2/applications/@me``."""
        world = self.service.world
        bot = world.users[self._bot_id()]
        return json_response(
            {
                "id": str(self._app_id()),
                "name": bot.display_name,
                "icon": None,
                "description": "Seedance sandbox application",
                "summary": "",
                "type": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "flags": 0,
                "owner": world.users[world.owner_id].to_dict(),
                "team": None,
                "bot": bot.to_dict(),
                "interactions_endpoint_url": None,
                "redirect_uris": [],
                "approximate_guild_count": 1,
                "integration_types_config": {"0": {}},
            }
        )

    async def get_gateway(self, request: web.Request) -> web.StreamResponse:
        """``GET /gateway``."""
        return json_response({"url": self._gateway_url()})

    async def get_gateway_bot(self, request: web.Request) -> web.StreamResponse:
        """``GET /gateway/bot``: the emulator's own gateway, so shards connect here too."""
        return json_response(
            {
                "url": self._gateway_url(),
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    # commands ----------------------------------------------------------------------------

    def _check_app(self, request: web.Request) -> None:
        if _snowflake(request, "application_id") != self._app_id():
            raise not_found(_UNKNOWN_APPLICATION, "Application")

    def _check_guild(self, request: web.Request) -> int:
        guild_id = _snowflake(request, "guild_id")
        if guild_id != self.service.world.guild_id:
            raise not_found(UNKNOWN_GUILD, "Guild")
        return guild_id

    async def get_global_commands(self, request: web.Request) -> web.StreamResponse:
        """``GET /applications/{app}/commands``."""
        self._check_app(request)
        return json_response(self.commands.registered(None))

    async def put_global_commands(self, request: web.Request) -> web.StreamResponse:
        """``PUT /applications/{app}/commands`` (bulk overwrite)."""
        self._check_app(request)
        body = _parse_json((await request.read()).decode() or "[]")
        result = self.commands.overwrite(None, body)
        self._on_commands_synced(None)
        return json_response(result)

    async def get_guild_commands(self, request: web.Request) -> web.StreamResponse:
        """``GET /applications/{app}/guilds/{guild}/commands``."""
        self._check_app(request)
        return json_response(self.commands.registered(self._check_guild(request)))

    async def put_guild_commands(self, request: web.Request) -> web.StreamResponse:
        """``PUT /applications/{app}/guilds/{guild}/commands`` (bulk overwrite)."""
        self._check_app(request)
        guild_id = self._check_guild(request)
        body = _parse_json((await request.read()).decode() or "[]")
        result = self.commands.overwrite(guild_id, body)
        self._on_commands_synced(guild_id)
        return json_response(result)

    # interactions ------------------------------------------------------------------------

    async def callback(self, request: web.Request) -> web.StreamResponse:
        """``POST /interactions/{id}/{token}/callback``."""
        body, uploads = await read_body(request)
        record, message = self.service.callback(
            _snowflake(request, "interaction_id"), request.match_info["token"], body, uploads
        )
        if flag(request, "with_response"):
            return json_response(self.service.callback_resource(record, message))
        return no_content()

    def _webhook(self, request: web.Request, method: str, route: str) -> InteractionRecord:
        return self.service.webhook_record(
            _snowflake(request, "application_id"), request.match_info["token"], method, route
        )

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
        channel = world.channel(_snowflake(request, "channel_id"))
        if channel.guild_id is not None and not self.service.user_can(
            self._bot_id(), channel.id, Permission.VIEW_CHANNEL
        ):
            raise missing_access()
        return json_response(channel.to_dict(world.users))

    async def typing(self, request: web.Request) -> web.StreamResponse:
        """``POST /channels/{id}/typing``."""
        self.service.world.channel(_snowflake(request, "channel_id"))
        return no_content()

    async def get_history(self, request: web.Request) -> web.StreamResponse:
        """``GET /channels/{id}/messages``."""

        def opt(name: str) -> int | None:
            value = request.query.get(name)
            return int(value) if value and value.isdigit() else None

        messages = self.service.history(
            _snowflake(request, "channel_id"),
            self._bot_id(),
            limit=opt("limit") or 50,
            before=opt("before"),
            after=opt("after"),
            around=opt("around"),
        )
        return json_response([self.service.render(m) for m in messages])

    async def create_message(self, request: web.Request) -> web.StreamResponse:
        """``POST /channels/{id}/messages``."""
        channel_id = _snowflake(request, "channel_id")
        self.service.world.channel(channel_id)
        body, uploads = await read_body(request)
        message = self.service.create_channel_message(channel_id, self._bot_id(), body, uploads)
        return json_response(self.service.render(message))

    async def get_message(self, request: web.Request) -> web.StreamResponse:
        """``GET /channels/{id}/messages/{mid}``."""
        message = self.service.get_channel_message(
            _snowflake(request, "channel_id"), _snowflake(request, "message_id"), self._bot_id()
        )
        return json_response(self.service.render(message))

    async def edit_message(self, request: web.Request) -> web.StreamResponse:
        """``PATCH /channels/{id}/messages/{mid}``."""
        channel_id = _snowflake(request, "channel_id")
        message_id = _snowflake(request, "message_id")
        body, uploads = await read_body(request)
        message = self.service.edit_channel_message(
            channel_id, message_id, self._bot_id(), body, uploads
        )
        return json_response(self.service.render(message))

    async def delete_message(self, request: web.Request) -> web.StreamResponse:
        """``DELETE /channels/{id}/messages/{mid}``."""
        self.service.delete_channel_message(
            _snowflake(request, "channel_id"), _snowflake(request, "message_id"), self._bot_id()
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
        return json_response(self.service.world.member_dict(_snowflake(request, "user_id")))
