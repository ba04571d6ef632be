"""Per-server budgets in the store: settings, role limits, grants, resets, switches.

Every change a moderator makes is one transaction that also appends to the audit trail.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from bot.models import (
    KEEP,
    MAX_CONCURRENT,
    MAX_CREDITS,
    CreditGrant,
    GuildDefaults,
    GuildSettings,
    Keep,
    Usage,
    UsageReset,
)
from bot.quota import Period
from bot.store.protocol import AdmissionView
from bot.store.sqlite.guild_sql import (
    StoreCore,
    audit,
    block_rules_in,
    granted_in,
    is_banned_in,
    load_settings,
    stamp_of,
    touch_settings,
)
from bot.store.sqlite.inline import Db
from bot.store.sqlite.ledger import (
    active_counts,
    credit_totals,
    next_mark,
    server_totals,
    usage_record,
)
from bot.store.sqlite.rows import to_text

__all__ = ["BudgetMixin"]


def _credits(name: str, value: int) -> int:
    if isinstance(value, bool) or not 0 <= value <= MAX_CREDITS:
        raise ValueError(f"{name} must be a whole number from 0 to {MAX_CREDITS:,}.")
    return value


def _concurrency(name: str, value: int) -> int:
    # At least one: a fresh or reconfigured server must always let a member run a job.
    if isinstance(value, bool) or not 1 <= value <= MAX_CONCURRENT:
        raise ValueError(f"{name} must be a whole number from 1 to {MAX_CONCURRENT}.")
    return value


async def usage_in(
    db: Db, settings: GuildSettings, member_id: int, role_ids: Collection[int], now: datetime
) -> Usage:
    """The member's and the server's credits in the server's period containing ``now``."""
    guild_id = settings.guild_id
    window = settings.window(now)
    limits = settings.limits(role_ids, await granted_in(db, guild_id, member_id, window))
    totals = await credit_totals(db, guild_id, member_id, window)
    active_member, active_server = await active_counts(db, guild_id, member_id)
    return usage_record(totals, limits, window, active_member, active_server)


class BudgetMixin(StoreCore):
    """Per-server budgets and switches; mixed into :class:`~bot.store.Store`."""

    # -- settings and limits ---------------------------------------------------------------

    async def guild_settings(self, guild_id: int, defaults: GuildDefaults) -> GuildSettings:
        """The server's settings, ``defaults`` filling in what it never set."""
        return await self._inline_read(lambda db: load_settings(db, guild_id, defaults))

    async def member_usage(
        self,
        guild_id: int,
        member_id: int,
        *,
        role_ids: Collection[int],
        defaults: GuildDefaults,
        now: datetime,
    ) -> Usage:
        """The member's and the server's credits in the server's current period, one snapshot."""

        async def read(db: Db) -> Usage:
            settings = await load_settings(db, guild_id, defaults)
            return await usage_in(db, settings, member_id, role_ids, now)

        return await self._inline_read(read)

    async def admission_view(
        self,
        guild_id: int,
        member_id: int,
        *,
        role_ids: Collection[int],
        defaults: GuildDefaults,
        now: datetime,
    ) -> AdmissionView:
        """Settings, ban, blocklist and usage in one snapshot, in one call on the inline thread."""

        async def read(db: Db) -> AdmissionView:
            settings = await load_settings(db, guild_id, defaults)
            return AdmissionView(
                settings=settings,
                banned=await is_banned_in(db, guild_id, member_id),
                rules=tuple(await block_rules_in(db, guild_id)),
                usage=await usage_in(db, settings, member_id, role_ids, now),
            )

        return await self._inline_read(read)

    async def set_guild_budget(
        self,
        guild_id: int,
        *,
        by: int,
        now: datetime | None = None,
        period: Period | Keep | None = KEEP,
        server_credits: int | Keep | None = KEEP,
        member_credits: int | Keep | None = KEEP,
        member_concurrent: int | Keep | None = KEEP,
        server_concurrent: int | Keep | None = KEEP,
    ) -> None:
        """Change some of the server's budgets; ``None`` puts one back to the default.

        Raises ``ValueError`` (moderator-facing message) for an out-of-range value; nothing
        is changed then. Concurrency caps are at least 1.
        """
        changes: dict[str, object] = {}
        if period is not KEEP:
            changes["period"] = None if period is None else Period(period).value
        for name, value in (("server_credits", server_credits), ("member_credits", member_credits)):
            if not isinstance(value, Keep):
                changes[name] = None if value is None else _credits(name, value)
        for name, value in (
            ("member_concurrent", member_concurrent),
            ("server_concurrent", server_concurrent),
        ):
            if not isinstance(value, Keep):
                changes[name] = None if value is None else _concurrency(name, value)
        if not changes:
            raise ValueError("Nothing to change.")
        stamp = stamp_of(now)
        # Column names come from the fixed names above, never from input.
        assignments = ", ".join(f"{name} = :{name}" for name in changes)
        detail = ", ".join(
            f"{name}={'default' if value is None else value}" for name, value in changes.items()
        )
        async with self._write() as db:
            await touch_settings(db, guild_id, stamp)
            await db.execute(
                f"UPDATE guild_settings SET {assignments} WHERE guild_id = :guild",
                {**changes, "guild": guild_id},
            )
            await audit(db, guild_id, by, "budget", detail, stamp)

    async def set_role_limit(
        self,
        guild_id: int,
        role_id: int,
        credits: int | None,
        *,
        by: int,
        now: datetime | None = None,
    ) -> None:
        """Give members with ``role_id`` a cap of ``credits`` (None removes the role's limit)."""
        stamp = stamp_of(now)
        async with self._write() as db:
            if credits is None:
                await db.execute(
                    "DELETE FROM role_limits WHERE guild_id = ? AND role_id = ?",
                    (guild_id, role_id),
                )
                detail = "removed"
            else:
                await db.execute(
                    "INSERT INTO role_limits (guild_id, role_id, member_credits, set_by, set_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_id, role_id) DO UPDATE SET "
                    "member_credits = excluded.member_credits, set_by = excluded.set_by, "
                    "set_at = excluded.set_at",
                    (guild_id, role_id, _credits("credits", credits), by, stamp),
                )
                detail = f"member_credits={credits}"
            await audit(db, guild_id, by, "role_limit", detail, stamp, target_id=role_id)

    async def grant_credits(
        self,
        guild_id: int,
        member_id: int,
        credits: int,
        *,
        defaults: GuildDefaults,
        by: int,
        now: datetime | None = None,
        reason: str | None = None,
    ) -> CreditGrant:
        """Raise (or, negative, lower) one member's cap for the current period only.

        The grant belongs to the server's period that contains ``now``; the next period
        starts without it. It raises the member's cap, not the pool.
        """
        if credits == 0 or abs(credits) > MAX_CREDITS:
            raise ValueError(f"A grant must be a non-zero number of credits up to {MAX_CREDITS:,}.")
        when = now or datetime.now(UTC)
        stamp = to_text(when)
        async with self._write() as db:
            settings = await load_settings(db, guild_id, defaults)
            window = settings.window(when)
            async with db.execute(
                "INSERT INTO credit_grants (guild_id, member_id, credits, period_key, reason, "
                "granted_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (guild_id, member_id, credits, window.key, reason, by, stamp),
            ) as cursor:
                row = await cursor.fetchone()
            assert row is not None
            total = await granted_in(db, guild_id, member_id, window)
            await audit(
                db,
                guild_id,
                by,
                "grant",
                f"{credits:+d} credits in {window.key}" + (f": {reason}" if reason else ""),
                stamp,
                target_id=member_id,
            )
        return CreditGrant(
            id=int(row[0]),
            guild_id=guild_id,
            member_id=member_id,
            credits=credits,
            period_key=window.key,
            granted_by=by,
            created_at=when,
            period_total=total,
        )

    async def reset_usage(
        self,
        guild_id: int,
        member_id: int | None,
        *,
        defaults: GuildDefaults,
        by: int,
        now: datetime | None = None,
    ) -> UsageReset:
        """Stop everything started so far in this period from counting.

        For one member, their cap starts afresh (the pool keeps counting what they spent:
        the money is gone). For the whole server (``member_id`` None) the pool and every
        member's cap start afresh. Jobs still running keep running; their credits no longer
        count. The ledger is not changed: the reset is a marker in its history.
        """
        when = now or datetime.now(UTC)
        stamp = to_text(when)
        async with self._write() as db:
            settings = await load_settings(db, guild_id, defaults)
            window = settings.window(when)
            if member_id is None:
                forgiven = sum(await server_totals(db, guild_id, window))
            else:
                forgiven = (await credit_totals(db, guild_id, member_id, window)).member_held
            mark = await next_mark(db)
            async with db.execute(
                "INSERT INTO usage_resets (guild_id, member_id, mark, window_start, "
                "forgiven, period_key, reset_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id",
                (
                    guild_id,
                    member_id,
                    mark,
                    to_text(window.start),
                    forgiven,
                    window.key,
                    by,
                    stamp,
                ),
            ) as cursor:
                row = await cursor.fetchone()
            assert row is not None
            scope = "server" if member_id is None else "member"
            await audit(
                db,
                guild_id,
                by,
                "reset",
                f"{scope} usage in {window.key}: {forgiven} credits forgiven",
                stamp,
                target_id=member_id,
            )
        return UsageReset(
            id=int(row[0]),
            guild_id=guild_id,
            member_id=member_id,
            forgiven=forgiven,
            period_key=window.key,
            reset_by=by,
            created_at=when,
        )

    async def _set_flag(
        self, guild_id: int, column: str, value: int | None, *, by: int, now: datetime | None
    ) -> None:
        stamp = stamp_of(now)
        async with self._write() as db:
            await touch_settings(db, guild_id, stamp)
            await db.execute(
                f"UPDATE guild_settings SET {column} = ? WHERE guild_id = ?", (value, guild_id)
            )
            await audit(db, guild_id, by, column, f"{column}={value}", stamp)

    async def set_approvals(
        self, guild_id: int, enabled: bool, *, by: int, now: datetime | None = None
    ) -> None:
        """Turn the approval queue on or off. Requests already waiting stay waiting."""
        await self._set_flag(guild_id, "approvals", int(enabled), by=by, now=now)

    async def set_paused(
        self, guild_id: int, paused: bool, *, by: int, now: datetime | None = None
    ) -> None:
        """The kill switch: while paused, no request is accepted or approved in the server."""
        await self._set_flag(guild_id, "paused", int(paused), by=by, now=now)

    async def set_modlog_channel(
        self, guild_id: int, channel_id: int | None, *, by: int, now: datetime | None = None
    ) -> None:
        """Where job entries and approval requests are posted (None: nowhere)."""
        await self._set_flag(guild_id, "modlog_channel_id", channel_id, by=by, now=now)
