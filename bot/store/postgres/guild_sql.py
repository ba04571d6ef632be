"""SQL shared by the per-server mixins of the store: the server's lock, settings, gates,
grants, the audit trail.

Every write that reads or changes a server's budgets, gates or approval queue first takes the
server's advisory lock inside its transaction (opening it with the lock, :func:`begin_locked`,
or :func:`lock_guild` once it knows the server), so such writes of one server run one after
another across every process, and each sees what the one before it committed.
Transactions that take no server lock never wait for one, so locks are always taken server
lock first, rows second, and two transactions can never wait on each other in a circle.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

from bot.errors import GateClosed
from bot.models import BUDGET_FIELDS, GuildDefaults, GuildSettings, JobRecord
from bot.moderation.gates import closed_gate
from bot.quota import Period, PeriodWindow
from bot.store.postgres.rows import Conn

__all__ = [
    "SETTINGS_SQL",
    "StoreCore",
    "audit",
    "begin_locked",
    "check_gates_in",
    "granted_in",
    "is_banned_in",
    "load_settings",
    "lock_guild",
    "lock_guilds",
    "settings_and_ban",
    "settings_of",
    "touch_settings",
]

log = logging.getLogger(__name__)


async def lock_guild(conn: Conn, guild_id: int) -> None:
    """Hold the server's advisory lock until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1::bigint)", guild_id)


def begin_locked(guild_id: int) -> str:
    """BEGIN a READ COMMITTED transaction and take the server's lock (:func:`lock_guild`'s),
    as one message of two statements: one round trip, and the lock is taken, in a statement
    of its own, before anything the transaction reads next takes its snapshot.

    A message of several statements cannot carry parameters, so the id is written into it:
    an ``int``, which spells nothing but digits.
    """
    return (
        "BEGIN ISOLATION LEVEL READ COMMITTED; "
        f"SELECT pg_advisory_xact_lock({int(guild_id)}::bigint)"
    )


async def lock_guilds(conn: Conn, guild_ids: Iterable[int]) -> None:
    """Hold several servers' locks, always taken in ascending order."""
    for guild_id in sorted(set(guild_ids)):
        await lock_guild(conn, guild_id)


SETTINGS_SQL = (
    "SELECT s.period, s.server_credits, s.member_credits, s.member_concurrent, "
    "s.server_concurrent, s.approvals, s.paused, s.modlog_channel_id, "
    "ARRAY(SELECT channel_id FROM allowed_channels WHERE guild_id = $1) AS channels, "
    "ARRAY(SELECT role_id FROM role_limits WHERE guild_id = $1 ORDER BY role_id) AS role_ids, "
    "ARRAY(SELECT member_credits FROM role_limits WHERE guild_id = $1 ORDER BY role_id) "
    "AS role_credits, "
    "EXISTS (SELECT 1 FROM banned_members WHERE guild_id = $1 AND member_id = $2) AS banned "
    "FROM (SELECT $1::bigint AS guild_id) g LEFT JOIN guild_settings s USING (guild_id)"
)
"""A server's settings, channels and role limits, and whether member $2 is banned: one round
trip, since every reservation starts with it."""

_SETTING_FIELDS = (
    "period",
    "server_credits",
    "member_credits",
    "member_concurrent",
    "server_concurrent",
    "approvals",
    "paused",
    "modlog_channel_id",
)


async def load_settings(conn: Conn, guild_id: int, defaults: GuildDefaults) -> GuildSettings:
    """A server's settings as stored, with ``defaults`` wherever it set nothing."""
    settings, _ = await settings_and_ban(conn, guild_id, None, defaults)
    return settings


async def settings_and_ban(
    conn: Conn, guild_id: int, member_id: int | None, defaults: GuildDefaults
) -> tuple[GuildSettings, bool]:
    """A server's settings (``defaults`` wherever it set nothing), and whether the member is
    banned there, in one query."""
    row = await conn.fetchrow(SETTINGS_SQL, guild_id, member_id)
    assert row is not None
    return settings_of(row, guild_id, defaults), bool(row["banned"])


def settings_of(row: asyncpg.Record, guild_id: int, defaults: GuildDefaults) -> GuildSettings:
    """The settings in a row with the columns of :data:`SETTINGS_SQL`."""
    stored = {name: row[name] for name in _SETTING_FIELDS}
    custom = frozenset(name for name in BUDGET_FIELDS if stored.get(name) is not None)

    def pick(name: str) -> int:
        value = stored.get(name)
        return int(getattr(defaults, name) if value is None else value)

    period = stored.get("period")
    modlog = stored.get("modlog_channel_id")
    return GuildSettings(
        guild_id=guild_id,
        period=defaults.period if period is None else Period(str(period)),
        server_credits=pick("server_credits"),
        member_credits=pick("member_credits"),
        member_concurrent=pick("member_concurrent"),
        server_concurrent=pick("server_concurrent"),
        approvals=bool(stored.get("approvals") or False),
        paused=bool(stored.get("paused") or False),
        modlog_channel_id=None if modlog is None else int(modlog),
        allowed_channels=frozenset(int(c) for c in row["channels"]),
        role_limits={
            int(role): int(credits)
            for role, credits in zip(row["role_ids"], row["role_credits"], strict=True)
        },
        customised=custom,
    )


async def touch_settings(conn: Conn, guild_id: int, stamp: datetime) -> None:
    """Make sure the server has a settings row (all defaults) and mark it changed."""
    await conn.execute(
        "INSERT INTO guild_settings (guild_id, updated_at) VALUES ($1, $2) "
        "ON CONFLICT (guild_id) DO UPDATE SET updated_at = excluded.updated_at",
        guild_id,
        stamp,
    )


async def audit(
    conn: Conn,
    guild_id: int,
    actor_id: int,
    action: str,
    detail: str,
    stamp: datetime,
    *,
    target_id: int | None = None,
) -> None:
    """Append one moderator action to the audit trail."""
    await conn.execute(
        "INSERT INTO mod_actions (guild_id, actor_id, action, target_id, detail, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        guild_id,
        actor_id,
        action,
        target_id,
        detail,
        stamp,
    )
    log.info("guild %d: %s by %d: %s", guild_id, action, actor_id, detail)


async def granted_in(conn: Conn, guild_id: int, member_id: int, window: PeriodWindow) -> int:
    """The member's grants made during ``window``."""
    total = await conn.fetchval(
        "SELECT COALESCE(SUM(credits), 0) FROM credit_grants WHERE guild_id = $1 "
        "AND member_id = $2 AND created_at >= $3 AND created_at < $4",
        guild_id,
        member_id,
        window.start,
        window.end,
    )
    return int(total)


async def is_banned_in(conn: Conn, guild_id: int, member_id: int) -> bool:
    """True if the member is banned from the bot in this server."""
    found = await conn.fetchval(
        "SELECT 1 FROM banned_members WHERE guild_id = $1 AND member_id = $2", guild_id, member_id
    )
    return found is not None


async def check_gates_in(
    conn: Conn,
    settings: GuildSettings,
    member_id: int,
    channel_id: int,
    parent_channel_id: int | None,
) -> None:
    """Raise :class:`GateClosed` for the first gate (:func:`closed_gate`) that refuses."""
    banned = await is_banned_in(conn, settings.guild_id, member_id)
    reason = closed_gate(
        settings, banned=banned, channel_id=channel_id, parent_id=parent_channel_id
    )
    if reason is not None:
        raise GateClosed(reason, settings.allowed_channels)


class StoreCore:
    """What the mixins need from the store (declared for the type checker)."""

    if TYPE_CHECKING:

        def _write(self) -> AbstractAsyncContextManager[Conn]: ...

        def _read(self) -> AbstractAsyncContextManager[Conn]: ...

        def _connection(self) -> AbstractAsyncContextManager[Conn]: ...

        def _locked(self, guild_id: int) -> AbstractAsyncContextManager[Conn]: ...

        async def _require_job(self, conn: Conn, job_id: int) -> JobRecord: ...
