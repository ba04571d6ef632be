"""Persistence: the interface in `bot.store.protocol`, today's backend in `bot.store.sqlite`."""

from bot.store.sqlite.store import SqliteStore as Store

__all__ = ["Store"]
