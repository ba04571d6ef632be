"""SQL shared by the per-server mixins of the store: settings, gates, grants, the audit trail."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import aiosqlite

from bot.errors import GateClosed
from bot.models import BUDGET_FIELDS, BlockRule, GuildDefaults, GuildSettings, JobRecord
from bot.moderation.gates import closed_gate
from bot.quota import Period, PeriodWindow
from bot.store.sqlite.inline import Db
from bot.store.sqlite.rows import to_text

__all__ = [
    "StoreCore",
    "audit",
    "block_rules_in",
    "check_gates_in",
    "granted_in",
    "is_banned_in",
    "load_settings",
    "stamp_of",
    "touch_settings",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


def stamp_of(now: datetime | None) -> str:
    """Store form of ``now``, or of the current time."""
    return to_text(now or datetime.now(UTC))


async def load_settings(db: Db, guild_id: int, defaults: GuildDefaults) -> GuildSettings:
    """A server's settings as stored, with ``defaults`` wherever it set nothing."""
    async with db.execute(
        "SELECT period, server_credits, member_credits, member_concurrent, server_concurrent, "
        "approvals, paused, modlog_channel_id FROM guild_settings WHERE guild_id = ?",
        (guild_id,),
    ) as cursor:
        row = await cursor.fetchone()
    async with db.execute(
        "SELECT channel_id FROM allowed_channels WHERE guild_id = ?", (guild_id,)
    ) as cursor:
        channels = frozenset(int(r[0]) for r in await cursor.fetchall())
    async with db.execute(
        "SELECT role_id, member_credits FROM role_limits WHERE guild_id = ?", (guild_id,)
    ) as cursor:
        roles = {int(r[0]): int(r[1]) for r in await cursor.fetchall()}
    stored: dict[str, Any] = {} if row is None else dict(zip(row.keys(), tuple(row), strict=True))
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
        approvals=bool(stored.get("approvals", 0)),
        paused=bool(stored.get("paused", 0)),
        modlog_channel_id=None if modlog is None else int(modlog),
        allowed_channels=channels,
        role_limits=roles,
        customised=custom,
    )


async def touch_settings(db: Db, guild_id: int, stamp: str) -> None:
    """Make sure the server has a settings row (all defaults) and mark it changed."""
    await db.execute(
        "INSERT INTO guild_settings (guild_id, updated_at) VALUES (?, ?) "
        "ON CONFLICT (guild_id) DO UPDATE SET updated_at = excluded.updated_at",
        (guild_id, stamp),
    )


async def audit(
    db: Db,
    guild_id: int,
    actor_id: int,
    action: str,
    detail: str,
    stamp: str,
    *,
    target_id: int | None = None,
) -> None:
    """Append one moderator action to the audit trail."""
    await db.execute(
        "INSERT INTO mod_actions (guild_id, actor_id, action, target_id, detail, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (guild_id, actor_id, action, target_id, detail, stamp),
    )
    log.info("guild %d: %s by %d: %s", guild_id, action, actor_id, detail)


async def granted_in(db: Db, guild_id: int, member_id: int, window: PeriodWindow) -> int:
    """The member's grants made during ``window``."""
    async with db.execute(
        "SELECT COALESCE(SUM(credits), 0) FROM credit_grants WHERE guild_id = ? "
        "AND member_id = ? AND created_at >= ? AND created_at < ?",
        (guild_id, member_id, to_text(window.start), to_text(window.end)),
    ) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def is_banned_in(db: Db, guild_id: int, member_id: int) -> bool:
    async with db.execute(
        "SELECT 1 FROM banned_members WHERE guild_id = ? AND member_id = ?", (guild_id, member_id)
    ) as cursor:
        return await cursor.fetchone() is not None


async def block_rules_in(db: Db, guild_id: int) -> list[BlockRule]:
    """The server's blocklist, in the order rules were added."""
    async with db.execute(
        "SELECT id, kind, pattern FROM block_rules WHERE guild_id = ? ORDER BY id", (guild_id,)
    ) as cursor:
        rows = await cursor.fetchall()
    return [BlockRule(kind=r["kind"], pattern=r["pattern"], id=int(r["id"])) for r in rows]


async def check_gates_in(
    db: Db,
    settings: GuildSettings,
    member_id: int,
    channel_id: int,
    parent_channel_id: int | None,
) -> None:
    """Raise :class:`GateClosed` for the first gate (:func:`closed_gate`) that refuses."""
    banned = await is_banned_in(db, settings.guild_id, member_id)
    reason = closed_gate(
        settings, banned=banned, channel_id=channel_id, parent_id=parent_channel_id
    )
    if reason is not None:
        raise GateClosed(reason, settings.allowed_channels)


class StoreCore:
    """What the mixins need from :class:`~bot.store.Store` (declared for the type checker)."""

    if TYPE_CHECKING:

        def _write(self) -> AbstractAsyncContextManager[aiosqlite.Connection]: ...

        def _read(self) -> AbstractAsyncContextManager[aiosqlite.Connection]: ...

        async def _require_job(self, db: Db, job_id: int) -> JobRecord: ...

        async def _inline_write(self, body: Callable[[Db], Awaitable[T]]) -> T: ...

        async def _inline_read(self, body: Callable[[Db], Awaitable[T]]) -> T: ...
