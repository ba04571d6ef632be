"""The PostgreSQL store: one asyncpg pool, SQL only, for several bot processes on one database."""

from bot.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
