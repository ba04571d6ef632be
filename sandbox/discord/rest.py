"""The emulated REST API: Discord's routes, bodies, auth and error answers."""

from __future__ import annotations

import logging
import re

from aiohttp import web

from .rest_core import RestCore
from .routes_app import AppRoutes
from .routes_channels import ChannelRoutes
from .wire import (
    API_PREFIX,
    Handler,
)

log = logging.getLogger(__name__)


class RestApi(AppRoutes, ChannelRoutes, RestCore):
    """Registers Discord's REST routes on an aiohttp application."""

    def add_routes(self, app: web.Application) -> None:
        """Add every API route, then the catch-all answering 404 for anything else."""
        routes: list[tuple[str, str, Handler, bool]] = [
            ("GET", "/users/@me", self.get_me, True),
            ("POST", "/users/@me/channels", self.create_dm, True),
            ("GET", "/users/{user_id:\\d+}", self.get_user, True),
            ("GET", "/oauth2/applications/@me", self.get_application, True),
            ("GET", "/applications/@me", self.get_application, True),
            ("GET", "/gateway", self.get_gateway, False),
            ("POST", "/attachments/refresh-urls", self.refresh_urls, True),
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
