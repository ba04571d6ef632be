"""The REST API's shared machinery: auth, error answers, recording every request."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

from aiohttp import web

from .commands import CommandRegistry
from .errors import (
    UNKNOWN_GUILD,
    DiscordHTTPError,
    not_found,
    route_not_found,
    unauthorized,
)
from .interactions import InteractionRecord
from .ratelimits import RateLimiter
from .request_log import RequestLog, RequestRecord
from .service import DiscordService
from .wire import UNKNOWN_APPLICATION, Handler, error_response, json_response, snowflake_param

log = logging.getLogger(__name__)


class RestCore:
    """What every route shares: ids, auth, error answers, the request log."""

    def __init__(
        self,
        *,
        service: DiscordService,
        commands: CommandRegistry,
        log_: RequestLog,
        gateway_url: Callable[[], str],
        on_commands_synced: Callable[[int | None], None],
        limiter: RateLimiter,
        lost_answers: Counter[tuple[str, str]] | None = None,
        failing: dict[tuple[str, str], list[int]] | None = None,
    ) -> None:
        self.limiter = limiter
        self.lost_answers: Counter[tuple[str, str]] = (
            Counter() if lost_answers is None else lost_answers
        )
        """Requests to handle, then drop the connection before answering (by method, route)."""
        self.failing: dict[tuple[str, str], list[int]] = {} if failing is None else failing
        """Requests answered with a 5xx without being handled: [status, times left]."""
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

    def _check_app(self, request: web.Request) -> None:
        if snowflake_param(request, "application_id") != self._app_id():
            raise not_found(UNKNOWN_APPLICATION, "Application")

    def _check_guild(self, request: web.Request) -> int:
        guild_id = snowflake_param(request, "guild_id")
        if guild_id != self.service.world.guild_id:
            raise not_found(UNKNOWN_GUILD, "Guild")
        return guild_id

    def _webhook(self, request: web.Request, method: str, route: str) -> InteractionRecord:
        return self.service.webhook_record(
            snowflake_param(request, "application_id"), request.match_info["token"], method, route
        )

    def add_catch_all(self, app: web.Application) -> None:
        """Answer every unmatched request with Discord's 404 and record it."""
        app.router.add_route("*", "/{tail:.*}", self.unknown_route)

    def _wrap(self, method: str, route: str, handler: Handler, auth: bool) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            received = time.time()
            code: int | None = None
            headers: dict[str, str] = {}
            try:
                if auth:
                    self._check_auth(request)
                token = request.headers.get("Authorization") if auth else None
                verdict = self.limiter.check(
                    method, route, request.path, dict(request.match_info), token
                )
                headers = verdict.headers
                failing = self.failing.get((method, route))
                if verdict.refusal is not None:
                    response: web.StreamResponse = json_response(verdict.refusal, 429)
                elif failing is not None and failing[1] > 0:
                    failing[1] -= 1
                    status = failing[0]
                    body = {"message": f"{status}: Server Error", "code": 0}
                    response = json_response(body, status)
                else:
                    response = await handler(request)
            except DiscordHTTPError as exc:
                code = exc.code
                response = error_response(exc)
                response.headers.update(exc.headers)
            except web.HTTPException:
                raise
            except Exception as exc:
                # An emulator bug: answer like Discord's 500 and keep it for tests to see.
                log.exception("discord emulator failed on %s %s", method, request.path)
                self.log.crashes.append(f"{method} {request.path}: {exc!r}")
                response = json_response({"message": "500: Internal Server Error", "code": 0}, 500)
            # Discord's API answers through Google's front end; discord.py retries a 429 only
            # when it carries this Via header (otherwise it assumes a Cloudflare ban).
            response.headers["Via"] = "1.1 google"
            response.headers.update(headers)
            self.log.add(
                RequestRecord(
                    method, route, request.path, response.status, code, time.time(), received
                )
            )
            if response.status < 400 and self.lost_answers[method, route] > 0:
                # The work is done, but the connection drops before the answer leaves.
                self.lost_answers[method, route] -= 1
                if request.transport is not None:
                    request.transport.close()
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
