"""The SQLite store: one file, one aiosqlite connection, SQL only."""

from bot.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
