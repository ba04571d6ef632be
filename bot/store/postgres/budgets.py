"""Per-server budgets in the store: settings, role limits, grants, resets, switches.

Every change a moderator makes is one transaction, under the server's lock, that also appends
to the audit trail.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

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
from bot.store.postgres.guild_sql import (
    StoreCore,
    audit,
    granted_in,
    load_settings,
    touch_settings,
)
from bot.store.postgres.ledger import active_counts, credit_totals, server_totals, usage_record
from bot.store.postgres.rows import now_or, utc

__all__ = ["BudgetMixin"]

# The columns a budget change may name, in their fixed order (never taken from input).
_BUDGET_COLUMNS = (
    "period",
    "server_credits",
    "member_credits",
    "member_concurrent",
    "server_concurrent",
)


def _credits(name: str, value: int) -> int:
    if isinstance(value, bool) or not 0 <= value <= MAX_CREDITS:
        raise ValueError(f"{name} must be a whole number from 0 to {MAX_CREDITS:,}.")
    return value


def _concurrency(name: str, value: int) -> int:
    # At least one: a fresh or reconfigured server must always let a member run a job.
    if isinstance(value, bool) or not 1 <= value <= MAX_CONCURRENT:
        raise ValueError(f"{name} must be a whole number from 1 to {MAX_CONCURRENT}.")
    return value


class BudgetMixin(StoreCore):
    """Per-server budgets and switches; mixed into the PostgreSQL store."""

    # -- settings and limits ---------------------------------------------------------------

    async def guild_settings(self, guild_id: int, defaults: GuildDefaults) -> GuildSettings:
        """The server's settings, ``defaults`` filling in what it never set."""
        async with self._read() as conn:
            return await load_settings(conn, guild_id, defaults)

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
        when = utc(now)
        async with self._read() as conn:
            settings = await load_settings(conn, guild_id, defaults)
            window = settings.window(when)
            limits = settings.limits(role_ids, await granted_in(conn, guild_id, member_id, window))
            totals = await credit_totals(conn, guild_id, member_id, window)
            active_member, active_server = await active_counts(conn, guild_id, member_id)
        return usage_record(totals, limits, window, active_member, active_server)

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
        stamp = now_or(now)
        names = [name for name in _BUDGET_COLUMNS if name in changes]
        assignments = ", ".join(f"{name} = ${n}" for n, name in enumerate(names, start=2))
        detail = ", ".join(
            f"{name}={'default' if value is None else value}" for name, value in changes.items()
        )
        async with self._locked(guild_id) as conn:
            await touch_settings(conn, guild_id, stamp)
            await conn.execute(
                f"UPDATE guild_settings SET {assignments} WHERE guild_id = $1",
                guild_id,
                *(changes[name] for name in names),
            )
            await audit(conn, guild_id, by, "budget", detail, stamp)

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
        stamp = now_or(now)
        async with self._locked(guild_id) as conn:
            if credits is None:
                await conn.execute(
                    "DELETE FROM role_limits WHERE guild_id = $1 AND role_id = $2",
                    guild_id,
                    role_id,
                )
                detail = "removed"
            else:
                await conn.execute(
                    "INSERT INTO role_limits (guild_id, role_id, member_credits, set_by, set_at) "
                    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (guild_id, role_id) DO UPDATE SET "
                    "member_credits = excluded.member_credits, set_by = excluded.set_by, "
                    "set_at = excluded.set_at",
                    guild_id,
                    role_id,
                    _credits("credits", credits),
                    by,
                    stamp,
                )
                detail = f"member_credits={credits}"
            await audit(conn, guild_id, by, "role_limit", detail, stamp, target_id=role_id)

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
        when = now_or(now)
        async with self._locked(guild_id) as conn:
            settings = await load_settings(conn, guild_id, defaults)
            window = settings.window(when)
            grant_id = await conn.fetchval(
                "INSERT INTO credit_grants (guild_id, member_id, credits, period_key, reason, "
                "granted_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                guild_id,
                member_id,
                credits,
                window.key,
                reason,
                by,
                when,
            )
            total = await granted_in(conn, guild_id, member_id, window)
            await audit(
                conn,
                guild_id,
                by,
                "grant",
                f"{credits:+d} credits in {window.key}" + (f": {reason}" if reason else ""),
                when,
                target_id=member_id,
            )
        return CreditGrant(
            id=int(grant_id),
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
        count. The ledger is not changed: the reset is a marker in its history, its mark
        taken under the server's lock after every charge it forgives.
        """
        when = now_or(now)
        async with self._locked(guild_id) as conn:
            settings = await load_settings(conn, guild_id, defaults)
            window = settings.window(when)
            if member_id is None:
                forgiven = sum(await server_totals(conn, guild_id, window))
            else:
                forgiven = (await credit_totals(conn, guild_id, member_id, window)).member_held
            reset_id = await conn.fetchval(
                "INSERT INTO usage_resets (guild_id, member_id, window_start, forgiven, "
                "period_key, reset_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
                "RETURNING id",
                guild_id,
                member_id,
                window.start,
                forgiven,
                window.key,
                by,
                when,
            )
            scope = "server" if member_id is None else "member"
            await audit(
                conn,
                guild_id,
                by,
                "reset",
                f"{scope} usage in {window.key}: {forgiven} credits forgiven",
                when,
                target_id=member_id,
            )
        return UsageReset(
            id=int(reset_id),
            guild_id=guild_id,
            member_id=member_id,
            forgiven=forgiven,
            period_key=window.key,
            reset_by=by,
            created_at=when,
        )

    async def _set_flag(
        self,
        guild_id: int,
        column: str,
        value: bool | int | None,
        shown: int | None,
        *,
        by: int,
        now: datetime | None,
    ) -> None:
        stamp = now_or(now)
        async with self._locked(guild_id) as conn:
            await touch_settings(conn, guild_id, stamp)
            # ``column`` is one of the three fixed names below, never input.
            await conn.execute(
                f"UPDATE guild_settings SET {column} = $2 WHERE guild_id = $1", guild_id, value
            )
            await audit(conn, guild_id, by, column, f"{column}={shown}", stamp)

    async def set_approvals(
        self, guild_id: int, enabled: bool, *, by: int, now: datetime | None = None
    ) -> None:
        """Turn the approval queue on or off. Requests already waiting stay waiting."""
        await self._set_flag(guild_id, "approvals", enabled, int(enabled), by=by, now=now)

    async def set_paused(
        self, guild_id: int, paused: bool, *, by: int, now: datetime | None = None
    ) -> None:
        """The kill switch: while paused, no request is accepted or approved in the server."""
        await self._set_flag(guild_id, "paused", paused, int(paused), by=by, now=now)

    async def set_modlog_channel(
        self, guild_id: int, channel_id: int | None, *, by: int, now: datetime | None = None
    ) -> None:
        """Where job entries and approval requests are posted (None: nowhere)."""
        await self._set_flag(guild_id, "modlog_channel_id", channel_id, channel_id, by=by, now=now)
