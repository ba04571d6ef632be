"""Persistence: the interface in `bot.store.protocol`, today's backend in `bot.store.sqlite`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bot.store.protocol import Store
from bot.store.sqlite.store import SqliteStore

__all__ = ["Store", "open_store"]


@asynccontextmanager
async def open_store(path: str | Path) -> AsyncIterator[Store]:
    """Open (creating and migrating as needed) the store at ``path``; closed on exit."""
    async with SqliteStore.open(path) as store:
        yield store
