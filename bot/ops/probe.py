"""`seedance-bot health`: ask a running bot's ``/healthz``, as a container health check does."""

from __future__ import annotations

import urllib.error
import urllib.request

from bot.config import MetricsConfig

TIMEOUT = 10.0
"""Seconds to wait for the answer (the bot itself gives the database 3 of them)."""


def health_url(config: MetricsConfig) -> str:
    """Where this machine reaches the bot's ``/healthz`` (a wildcard address means loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(config.host, config.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{config.port}/healthz"


def ask_health(config: MetricsConfig, timeout: float = TIMEOUT) -> tuple[bool, str]:
    """Whether the bot says it is healthy, and the one line it (or the connection) said."""
    if config.port == 0:
        return False, "[metrics] port is 0 (off), so the bot serves no /healthz to ask"
    url = health_url(config)
    try:
        # Straight to the bot, whatever proxy the environment names.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=timeout) as response:
            return True, _line(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return False, f"{error.code}: {_line(error.read())}"
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return False, f"no answer from {url}: {reason}"


def _line(body: bytes) -> str:
    return " ".join(body.decode("utf-8", "replace").split())[:300]
