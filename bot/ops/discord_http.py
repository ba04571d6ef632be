"""Discord's REST calls, as the metrics see them: an aiohttp trace for discord.py's session.

discord.py takes it as the client's ``http_trace``; every request it makes (its retries after a
429 included) then reports its latency and, for a 429, the limit's scope. Routes are cut to
their first part after the API version, so no id or interaction token becomes a label.
"""

from __future__ import annotations

import re
import time
from types import SimpleNamespace

import aiohttp
from yarl import URL

from bot.ops import metrics

_API_ROUTE = re.compile(r"/api/v\d+/([a-z-]+)")
ROUTES = frozenset(
    {"applications", "channels", "gateway", "guilds", "interactions", "users", "webhooks"}
)


def route_of(url: URL) -> str:
    """``/api/v10/channels/123/messages`` -> ``channels``; anything unexpected -> ``other``."""
    match = _API_ROUTE.search(url.path)
    if match is None or match.group(1) not in ROUTES:
        return "other"
    return match.group(1)


async def _started(
    _session: aiohttp.ClientSession, context: SimpleNamespace, _params: object
) -> None:
    context.started = time.perf_counter()


async def _ended(
    _session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
) -> None:
    route = route_of(params.url)
    metrics.DISCORD_SECONDS.labels(route=route).observe(time.perf_counter() - context.started)
    if params.response.status == 429:
        scope = params.response.headers.get("X-RateLimit-Scope", "").lower()
        if scope not in ("user", "global", "shared"):
            scope = "other"
        metrics.DISCORD_RATE_LIMITED.labels(route=route, scope=scope).inc()


async def _failed(
    _session: aiohttp.ClientSession,
    context: SimpleNamespace,
    params: aiohttp.TraceRequestExceptionParams,
) -> None:
    metrics.DISCORD_SECONDS.labels(route=route_of(params.url)).observe(
        time.perf_counter() - context.started
    )


def discord_trace() -> aiohttp.TraceConfig:
    """A fresh trace for one discord.py client."""
    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(_started)
    trace.on_request_end.append(_ended)
    trace.on_request_exception.append(_failed)
    return trace
