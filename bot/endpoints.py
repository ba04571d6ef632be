"""Where discord.py finds Discord: the real one, or a local emulator."""

from __future__ import annotations

import logging

import discord.gateway
import discord.http
import yarl

log = logging.getLogger(__name__)

_DISCORD_API_BASE = f"https://discord.com/api/v{discord.http.INTERNAL_API_VERSION}"
_DISCORD_GATEWAY = "wss://gateway.discord.gg/"


def configure_discord_endpoints(api_base: str | None, gateway_url: str | None) -> None:
    """Point discord.py's REST and gateway at other servers; ``None`` means Discord itself.

    REST calls (webhooks and interaction callbacks included) build their URLs from
    ``Route.BASE``. A plain ``Client`` connects to ``DiscordWebSocket.DEFAULT_GATEWAY``
    and falls back to it when a session is invalidated; resumes use READY's
    ``resume_gateway_url`` and sharded clients ask ``GET /gateway/bot``, both of which the
    server being pointed at answers for itself.
    """
    base = (api_base or _DISCORD_API_BASE).rstrip("/")
    gateway = yarl.URL(gateway_url or _DISCORD_GATEWAY)
    if gateway.scheme not in ("ws", "wss"):
        raise ValueError(f"gateway URL must be ws:// or wss://, got {gateway_url!r}")
    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway
    if api_base is not None or gateway_url is not None:
        log.info("discord endpoints: REST %s, gateway %s", base, gateway)
