"""Schema migrations: numbered ``V{n}__name.sql`` files, the applied ones in ``schema_migrations``.

The files are found and checked (1..n, no gaps) by the same loader as the SQLite store's.
"""

from __future__ import annotations

import logging

from bot.store.postgres.rows import Conn
from bot.store.sqlite.schema import Migration, load_migrations

__all__ = ["MIGRATION_LOCK", "Migration", "SchemaTooNew", "apply_migrations", "load_migrations"]

log = logging.getLogger(__name__)

MIGRATION_LOCK = -7_205_759_403_792_793_600
"""The advisory lock key migrations run under. Negative, so it never equals a server's lock
(a Discord id, always positive)."""


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer bot than this one."""


_VERSIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
    "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
)


async def current_version(conn: Conn) -> int:
    """The newest applied migration (0 for a database the bot never touched)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))


async def apply_migrations(conn: Conn, migrations: list[Migration]) -> int:
    """Bring the database up to the newest migration; return the resulting version.

    Each migration runs in its own transaction together with its ``schema_migrations`` row,
    under an advisory lock and with the version re-read inside it, so two processes starting
    on one fresh database never both apply the same migration. A database at a version newer
    than the files raises :class:`SchemaTooNew`, changing nothing.
    """
    latest = migrations[-1].version if migrations else 0
    for migration in migrations:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(_VERSIONS)
            current = await current_version(conn)
            if current >= migration.version:
                continue
            if current != migration.version - 1:
                raise RuntimeError(
                    f"database is at schema version {current}, cannot apply "
                    f"V{migration.version}__{migration.name}"
                )
            # No arguments: the simple query protocol runs the whole file, statement by statement.
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
        log.info("applied migration V%d__%s", migration.version, migration.name)
    version = await current_version(conn)
    if version > latest:
        raise SchemaTooNew(
            f"database schema version {version} is newer than this bot knows ({latest}); "
            "upgrade the bot"
        )
    return version
