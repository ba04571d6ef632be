"""The two stores the tests run against: SQLite in a file, PostgreSQL in a fresh database.

A test that takes the ``backend`` fixture runs once per backend its ``store_backends`` marker
names (SQLite alone without one); it opens stores with ``backend.open()`` (as often as it likes,
all on one database, as several processes or restarts would) and reads rows with
``backend.rows(sql)``, plain SQL both databases understand.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from bot.store import Store, open_store
from bot.store.postgres import PostgresStore
from bot.store.sqlite.schema import load_migrations
from tests.harness.postgres import PostgresServer

BACKENDS = ("sqlite", "postgres")


def open_address(address: str) -> AbstractAsyncContextManager[Store]:
    """A store on a PostgreSQL URL or a SQLite file path (for child processes)."""
    if address.startswith("postgresql://"):
        return PostgresStore.open(address)
    return open_store(address)


class Backend(Protocol):
    name: str

    @property
    def address(self) -> str:
        """Where the database is, for :func:`open_address` in another process."""
        ...

    @property
    def latest_version(self) -> int:
        """The schema version a store of this backend migrates to."""
        ...

    def open(self) -> AbstractAsyncContextManager[Store]:
        """A store on the test's database (created and migrated on first open)."""
        ...

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of a query, read past the store."""
        ...


@dataclass
class SqliteBackend:
    path: Path
    name: str = "sqlite"

    @property
    def address(self) -> str:
        return str(self.path)

    @property
    def latest_version(self) -> int:
        return load_migrations("bot.store.sqlite")[-1].version

    def open(self) -> AbstractAsyncContextManager[Store]:
        return open_store(self.path)

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        def read() -> list[tuple[Any, ...]]:
            with sqlite3.connect(self.path) as raw:
                found = [tuple(row) for row in raw.execute(sql).fetchall()]
            raw.close()
            return found

        return await asyncio.to_thread(read)


@dataclass
class PostgresBackend:
    server: PostgresServer
    database: str
    name: str = "postgres"

    @property
    def url(self) -> str:
        return self.server.url(self.database)

    @property
    def address(self) -> str:
        return self.url

    @property
    def latest_version(self) -> int:
        return load_migrations("bot.store.postgres")[-1].version

    @asynccontextmanager
    async def _open(self) -> AsyncIterator[Store]:
        async with PostgresStore.open(self.url) as store:
            yield store

    def open(self) -> AbstractAsyncContextManager[Store]:
        return self._open()

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(self.url)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()
