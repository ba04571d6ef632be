"""Opening the pool: connect, migrate, and name any problem in one line without the password."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit

import asyncpg

from bot.store.postgres.schema import SchemaTooNew, apply_migrations, load_migrations

__all__ = ["DatabaseUnavailable", "connect_pool", "redact"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
"""Seconds to wait for the server to answer at start before giving up."""


class DatabaseUnavailable(Exception):
    """The database cannot be used: unreachable, credentials refused, or a newer schema.

    The message is one line and never contains the password.
    """


def redact(url: str) -> str:
    """``url`` with any password (in the user part or the query) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hosts = netloc.rpartition("@")
            user, colon, _ = userinfo.partition(":")
            netloc = f"{user}:***@{hosts}" if colon else netloc
        query = urlencode(
            [
                (key, "***" if key.lower() == "password" else value)
                for key, value in parse_qsl(parts.query, keep_blank_values=True)
            ],
            safe="/*",
        )
        # Spelled out: urlunsplit would drop the empty host of the Unix-socket form.
        return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
    except ValueError:
        return "the configured url"


def _passwords(url: str) -> list[str]:
    """Every password spelled in ``url``, to scrub from messages that might echo it."""
    found = []
    try:
        parts = urlsplit(url)
        if parts.password:
            found.append(parts.password)
        found += [v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v]
    except ValueError:
        pass
    return found


def _one_line(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return " ".join(text.split())


async def _hand_back(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """What a connection needs on its way back to the pool beyond asyncpg's own rollback of
    a transaction left open: nothing, so releasing it costs no round trip.

    asyncpg's default reset (unlock session advisory locks, close cursors, UNLISTEN, RESET
    ALL) is one more round trip after every call; the store leaves none of those behind:
    its advisory locks are transaction locks, it declares no cursors, it listens on a
    connection of its own (``signals``), and it changes no setting of a session.
    """


@asynccontextmanager
async def connect_pool(
    url: str, *, min_size: int = 1, max_size: int = 10
) -> AsyncIterator[asyncpg.Pool[asyncpg.Record]]:
    """A pool on ``url`` whose database is at the newest schema; closed on exit.

    Raises :class:`DatabaseUnavailable` when it cannot get there.
    """
    where = redact(url)
    secrets = _passwords(url)
    migrations = await asyncio.to_thread(load_migrations, "bot.store.postgres")
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=CONNECT_TIMEOUT,
            reset=_hand_back,
            server_settings={"application_name": "seedance-bot", "timezone": "UTC"},
        )
    except (OSError, TimeoutError) as exc:
        reason = _one_line(str(exc) or type(exc).__name__, secrets)
        raise DatabaseUnavailable(f"cannot reach PostgreSQL at {where}: {reason}") from None
    except asyncpg.PostgresError as exc:
        reason = _one_line(str(exc), secrets)
        raise DatabaseUnavailable(f"PostgreSQL at {where} refused the bot: {reason}") from None
    except (asyncpg.InterfaceError, ValueError) as exc:
        reason = _one_line(str(exc), secrets)
        raise DatabaseUnavailable(f"{where} is not a usable PostgreSQL URL: {reason}") from None
    try:
        async with pool.acquire() as conn:
            try:
                version = await apply_migrations(conn, migrations)
            except SchemaTooNew as exc:
                raise DatabaseUnavailable(f"PostgreSQL at {where}: {exc}") from None
        log.info("opened store %s at schema version %d", where, version)
        yield pool
    finally:
        await pool.close()
