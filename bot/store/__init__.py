"""Persistence: the interface in `bot.store.protocol`; SQLite (`bot.store.sqlite`, the default)
or PostgreSQL (`bot.store.postgres`, for several processes on one database) behind it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bot.config import ConfigError, DatabaseConfig
from bot.store.postgres.connect import DatabaseUnavailable, redact
from bot.store.postgres.store import PostgresStore
from bot.store.protocol import Store
from bot.store.sqlite.store import SqliteStore

__all__ = ["Store", "describe_database", "open_database", "open_store"]


@asynccontextmanager
async def open_store(path: str | Path) -> AsyncIterator[Store]:
    """Open (creating and migrating as needed) the SQLite store at ``path``; closed on exit."""
    async with SqliteStore.open(path) as store:
        yield store


@asynccontextmanager
async def open_database(config: DatabaseConfig) -> AsyncIterator[Store]:
    """The configured store: PostgreSQL at ``url`` when set, else SQLite at ``path``.

    A PostgreSQL server that cannot be reached, refuses the credentials or holds a newer
    schema raises :class:`~bot.config.ConfigError`: one line naming ``[database] url`` and the
    problem, never the password.
    """
    if config.url is None:
        async with open_store(config.path) as store:
            yield store
        return
    try:
        async with PostgresStore.open(config.url) as store:
            yield store
    except DatabaseUnavailable as exc:
        raise ConfigError(f"[database] url: {exc}") from None


def describe_database(config: DatabaseConfig) -> str:
    """Where the configured store lives, fit to print (a password shows as ``***``)."""
    return str(config.path) if config.url is None else redact(config.url)
