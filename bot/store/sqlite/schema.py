"""Schema migrations: numbered ``V{n}__name.sql`` files, the version in ``PRAGMA user_version``."""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import dataclass
from importlib import resources

import aiosqlite

__all__ = ["Migration", "apply_migrations", "load_migrations", "split_statements"]

log = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"V(?P<version>[0-9]+)__(?P<name>\w+)\.sql")


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str


def load_migrations(
    package: str = "bot.store.sqlite", folder: str = "migrations"
) -> list[Migration]:
    """Read the migration files shipped in ``package/folder``, in version order.

    Versions must run 1, 2, 3, ... without gaps or duplicates; anything else is a packaging
    mistake and raises ``RuntimeError``.
    """
    found: dict[int, Migration] = {}
    for entry in (resources.files(package) / folder).iterdir():
        match = _FILE_NAME.fullmatch(entry.name)
        if match is None:
            continue
        version = int(match["version"])
        if version in found:
            raise RuntimeError(
                f"two migrations claim version {version}: V{version}__{found[version].name}.sql "
                f"and {entry.name}"
            )
        found[version] = Migration(version, match["name"], entry.read_text(encoding="utf-8"))
    versions = sorted(found)
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migration versions must run 1..n without gaps, found {versions}")
    return [found[v] for v in versions]


def split_statements(script: str) -> list[str]:
    """Split a SQL script into single statements.

    ``executescript`` would commit the open transaction first, so a migration is run statement
    by statement inside one transaction instead. ``sqlite3.complete_statement`` knows about
    string literals, comments and trigger bodies, so only real statement ends split.
    """
    statements: list[str] = []
    start = 0
    for end in (m.end() for m in re.finditer(";", script)):
        candidate = script[start:end]
        if sqlite3.complete_statement(candidate):
            statements.append(candidate.strip())
            start = end
    rest = script[start:].strip()
    if rest:
        # A trailing comment executes as a no-op; an unterminated statement still runs.
        statements.append(rest)
    return statements


async def apply_migrations(db: aiosqlite.Connection, migrations: list[Migration]) -> int:
    """Bring the database up to the newest migration; return the resulting version.

    Each migration runs in its own ``BEGIN IMMEDIATE`` transaction together with the
    ``user_version`` bump, and the version is re-read inside that transaction, so two
    processes starting on one fresh file cannot both apply the same migration.
    """
    latest = migrations[-1].version if migrations else 0
    for migration in migrations:
        await db.execute("BEGIN IMMEDIATE")
        try:
            current = await _user_version(db)
            if current > latest:
                raise RuntimeError(
                    f"database schema version {current} is newer than this bot knows ({latest});"
                    " upgrade the bot"
                )
            if current >= migration.version:
                await db.rollback()
                continue
            if current != migration.version - 1:
                raise RuntimeError(
                    f"database is at schema version {current}, cannot apply "
                    f"V{migration.version}__{migration.name}"
                )
            for statement in split_statements(migration.sql):
                await db.execute(statement)
            # PRAGMA takes no bound parameters; the version is an int from the file name.
            await db.execute(f"PRAGMA user_version = {migration.version:d}")
            await db.commit()
        except BaseException:
            await db.rollback()
            raise
        log.info("applied migration V%d__%s", migration.version, migration.name)
    return await _user_version(db)


async def _user_version(db: aiosqlite.Connection) -> int:
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])
