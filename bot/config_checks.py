"""How each configuration value is checked: one converter per kind of value, each raising
:class:`ConfigError` with one line that names the key."""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from yarl import URL


class ConfigError(Exception):
    """A bad configuration value; the message is one line naming the key."""


T = TypeVar("T")


class Section:
    """Reads one `[section]` table, naming `[section] key` in every error."""

    def __init__(self, data: Mapping[str, Any], name: str, known: set[str]) -> None:
        value = data.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}] must be a table")
        self.name = name
        self.table: dict[str, Any] = value
        for key in self.table:
            if key not in known:
                raise ConfigError(f"[{name}] {key} is not a known key")

    def where(self, key: str) -> str:
        return f"[{self.name}] {key}"

    def get(self, key: str, default: T, convert: Callable[[str, Any], T]) -> T:
        if key not in self.table:
            return default
        return convert(self.where(key), self.table[key])


INT64_MAX = 2**63 - 1
"""The largest integer the database (or a Discord id) holds."""


def integer(minimum: int, maximum: int = INT64_MAX) -> Callable[[str, Any], int]:
    def convert(where: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{where} must be an integer ≥ {minimum}")
        if value > maximum:
            raise ConfigError(f"{where} must be an integer ≤ {maximum:,}")
        return value

    return convert


def seconds(minimum: float) -> Callable[[str, Any], float]:
    def convert(where: str, value: Any) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or value < minimum:
            raise ConfigError(f"{where} must be a number of seconds ≥ {minimum:g}")
        return float(value)

    return convert


def hours_below_a_day(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 24:
        raise ConfigError(
            f"{where} must be a number of hours above 0 and below 24 (Discord's attachment "
            f"links expire after a day), got {value!r}"
        )
    return float(value)


def choice(choices: tuple[Any, ...]) -> Callable[[str, Any], Any]:
    def convert(where: str, value: Any) -> Any:
        if isinstance(value, bool) or value not in choices:
            spelled = ", ".join(f'"{c}"' if isinstance(c, str) else str(c) for c in choices)
            raise ConfigError(f"{where} must be one of {spelled}")
        return value

    return convert


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address (IPv4-mapped IPv6 included); never a look-alike name."""
    name = host.lower().rstrip(".").strip("[]")
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def url_of(secure: str, plain: str) -> Callable[[str, Any], str]:
    """A URL with scheme ``secure``, or ``plain`` on a loopback host only (tests, sandbox)."""

    def convert(where: str, value: Any) -> str:
        kind = "http(s)" if secure == "https" else "ws(s)"
        try:
            url = URL(value) if isinstance(value, str) else None
        except ValueError:
            url = None
        if url is None or url.scheme not in (secure, plain) or not url.host:
            raise ConfigError(f"{where} must be an {kind} URL")
        if url.scheme == plain and not is_loopback_host(url.host):
            raise ConfigError(
                f"{where} may use plain {plain} only on a loopback host; use {secure}://"
            )
        return str(value).rstrip("/")

    return convert


def optional(convert: Callable[[str, Any], str]) -> Callable[[str, Any], str | None]:
    def optional(where: str, value: Any) -> str | None:
        return None if value == "" else convert(where, value)

    return optional


http_url = url_of("https", "http")
ws_url = url_of("wss", "ws")
_HOST_NAME = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


def hosts(where: str, value: Any) -> tuple[str, ...]:
    hosts = []
    for item in value if isinstance(value, list) else [None]:
        name = item.strip().lower().rstrip(".") if isinstance(item, str) else ""
        if not _HOST_NAME.fullmatch(name):
            raise ConfigError(
                f'{where} must be a list of host names like ["files.runcomfy.net", '
                f'"*.runcomfy.net"]'
            )
        hosts.append(name)
    return tuple(hosts)


def port(where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigError(f"{where} must be a TCP port from 1 to 65535, or 0 for off")
    return value


def listen_host(where: str, value: Any) -> str:
    """An address to listen on: an IP address (``0.0.0.0`` for all) or a host name."""
    name = value.strip().lower().rstrip(".") if isinstance(value, str) else ""
    try:
        return str(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        pass
    if not name or name.startswith("*") or not _HOST_NAME.fullmatch(name):
        raise ConfigError(
            f'{where} must be an IP address or a host name, like "127.0.0.1" or "0.0.0.0"'
        )
    return name


def snowflake(where: str, value: Any) -> int | None:
    if value == 0 or value == "":
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64_MAX:
        raise ConfigError(f"{where} must be a Discord server id (a number), or 0 for none")
    return value


def shard_ids(count: int) -> Callable[[str, Any], tuple[int, ...]]:
    def convert(where: str, value: Any) -> tuple[int, ...]:
        valid = isinstance(value, list) and all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < count for i in value
        )
        if not valid or len(set(value)) != len(value):
            raise ConfigError(
                f"{where} must be a list of distinct shard numbers from 0 to {count - 1} "
                "(shard_count - 1), or [] for a process that only runs jobs"
            )
        return tuple(sorted(value))

    return convert


def path(where: str, value: Any) -> Path:
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise ConfigError(f"{where} must be a file path")
    return Path(value)


_DATABASE_URL_FORMS = (
    "postgresql://user:password@host:5432/dbname or, over a Unix socket, "
    "postgresql:///dbname?host=/run/postgresql&user=name"
)


def database_url(where: str, value: Any) -> str | None:
    """A PostgreSQL URI, checked for its form only (whether it connects is known at start).
    Never echoed back: it may hold a password."""
    if value == "":
        return None
    try:
        parts = urlsplit(value) if isinstance(value, str) else None
        port = None if parts is None else parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"{where} must be a PostgreSQL URL like {_DATABASE_URL_FORMS}")
    if port == 0 or any(ch.isspace() for ch in value):
        raise ConfigError(f"{where} is not a valid URL: use {_DATABASE_URL_FORMS}")
    return str(value)
