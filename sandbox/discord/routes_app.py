"""REST routes about the bot itself: users, its application, the gateway, its commands."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

from .command_rules import without_localizations
from .errors import JSON, invalid_form
from .wire import flag, invalid_snowflake, json_response, parse_json, read_body, snowflake_param

log = logging.getLogger(__name__)

MAX_REFRESH_URLS = 50


def _as_listed(request: web.Request, commands: list[JSON]) -> list[JSON]:
    """Listed commands carry full localization dictionaries only with ``with_localizations``."""
    if flag(request, "with_localizations"):
        return commands
    locale = request.headers.get("X-Discord-Locale", "en-US")
    return [without_localizations(c, locale) for c in commands]


if TYPE_CHECKING:
    from .rest_core import RestCore as _Base
else:
    _Base = object


class AppRoutes(_Base):
    """Users, the application, the gateway URL and command registration."""

    # users, application, gateway ---------------------------------------------------------

    async def get_me(self, request: web.Request) -> web.StreamResponse:
        """``GET /users/@me``."""
        user = self.service.world.user(self._bot_id()).to_dict()
        user.update(verified=True, mfa_enabled=False, email=None, locale="en-US")
        return json_response(user)

    async def get_user(self, request: web.Request) -> web.StreamResponse:
        """``GET /users/{id}``."""
        return json_response(self.service.world.user(snowflake_param(request, "user_id")).to_dict())

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
                # Resources > Application, "Application Structure": the fields Discord fills
                # for the bot's own application, null where nothing is configured.
                "approximate_guild_count": 1,
                "approximate_user_install_count": 0,
                "approximate_user_authorization_count": 0,
                "rpc_origins": [],
                "role_connections_verification_url": None,
                "event_webhooks_url": None,
                "event_webhooks_status": 1,
                "tags": [],
                "flags_new": "0",
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

    async def refresh_urls(self, request: web.Request) -> web.StreamResponse:
        """``POST /attachments/refresh-urls``: ``{"attachment_urls": [...]}`` (1 to 50) ->
        ``{"refreshed_urls": [{"original", "refreshed"}, ...]}``, one entry per URL given."""
        body, _ = await read_body(request)
        urls = body.get("attachment_urls") if isinstance(body, dict) else None
        if not isinstance(urls, list) or not urls:
            raise invalid_form("attachment_urls", "BASE_TYPE_REQUIRED", "This field is required")
        if len(urls) > MAX_REFRESH_URLS:
            raise invalid_form(
                "attachment_urls",
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {MAX_REFRESH_URLS} or fewer in length.",
            )
        for index, url in enumerate(urls):
            if not isinstance(url, str) or not url:
                raise invalid_form(
                    f"attachment_urls.{index}", "BASE_TYPE_REQUIRED", "This field is required"
                )
        store = self.service.store
        return json_response(
            {"refreshed_urls": [{"original": u, "refreshed": store.refreshed(u)} for u in urls]}
        )

    # commands ----------------------------------------------------------------------------

    async def get_global_commands(self, request: web.Request) -> web.StreamResponse:
        """``GET /applications/{app}/commands``."""
        self._check_app(request)
        return json_response(_as_listed(request, self.commands.registered(None)))

    async def put_global_commands(self, request: web.Request) -> web.StreamResponse:
        """``PUT /applications/{app}/commands`` (bulk overwrite)."""
        self._check_app(request)
        body = parse_json((await request.read()).decode() or "[]")
        result = self.commands.overwrite(None, body)
        self._on_commands_synced(None)
        return json_response(result)

    async def get_guild_commands(self, request: web.Request) -> web.StreamResponse:
        """``GET /applications/{app}/guilds/{guild}/commands``."""
        self._check_app(request)
        return json_response(
            _as_listed(request, self.commands.registered(self._check_guild(request)))
        )

    async def put_guild_commands(self, request: web.Request) -> web.StreamResponse:
        """``PUT /applications/{app}/guilds/{guild}/commands`` (bulk overwrite)."""
        self._check_app(request)
        guild_id = self._check_guild(request)
        body = parse_json((await request.read()).decode() or "[]")
        result = self.commands.overwrite(guild_id, body)
        self._on_commands_synced(guild_id)
        return json_response(result)
