"""Per-server moderation in the store: allowed channels, bans, the prompt blocklist,
forgetting a member and the audit trail.

Every change a moderator makes is one transaction, under the server's lock (gates are checked
under it too), that also appends to ``mod_actions``.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.errors import MemberBusy
from bot.models import AuditEntry, Ban, BlockRule, ForgetReport, RuleKind
from bot.store.postgres.guild_sql import StoreCore, audit, is_banned_in
from bot.store.postgres.rows import OPEN, affected, now_or, time_of

__all__ = ["FORGOTTEN", "ModerationMixin"]

log = logging.getLogger(__name__)

FORGOTTEN = 0
"""The member id a forgotten member's charges are kept under (no Discord id is 0)."""


class ModerationMixin(StoreCore):
    """Channels, bans, blocklist, forget and audit; mixed into the PostgreSQL store."""

    # -- allowed channels -----------------------------------------------------------------

    async def allow_channel(
        self, guild_id: int, channel_id: int, *, by: int, now: datetime | None = None
    ) -> bool:
        """Add a channel to the allowed list (the first one restricts the bot to the list)."""
        stamp = now_or(now)
        async with self._locked(guild_id) as conn:
            added = affected(
                await conn.execute(
                    "INSERT INTO allowed_channels (guild_id, channel_id, added_by, added_at) "
                    "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    guild_id,
                    channel_id,
                    by,
                    stamp,
                )
            )
            if added:
                await audit(
                    conn, guild_id, by, "channel_allow", "allowed", stamp, target_id=channel_id
                )
        return added > 0

    async def disallow_channel(
        self, guild_id: int, channel_id: int, *, by: int, now: datetime | None = None
    ) -> bool:
        """Remove a channel from the allowed list (an empty list allows every channel)."""
        stamp = now_or(now)
        async with self._locked(guild_id) as conn:
            removed = affected(
                await conn.execute(
                    "DELETE FROM allowed_channels WHERE guild_id = $1 AND channel_id = $2",
                    guild_id,
                    channel_id,
                )
            )
            if removed:
                await audit(
                    conn, guild_id, by, "channel_disallow", "removed", stamp, target_id=channel_id
                )
        return removed > 0

    async def clear_channels(self, guild_id: int, *, by: int, now: datetime | None = None) -> int:
        """Allow every channel again; returns how many entries were removed."""
        stamp = now_or(now)
        async with self._locked(guild_id) as conn:
            removed = affected(
                await conn.execute("DELETE FROM allowed_channels WHERE guild_id = $1", guild_id)
            )
            await audit(conn, guild_id, by, "channels_clear", f"{removed} removed", stamp)
        return removed

    # -- bans -----------------------------------------------------------------------------

    async def ban_member(
        self,
        guild_id: int,
        member_id: int,
        *,
        by: int,
        reason: str | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Stop a member from using the bot in the server; False if already banned."""
        stamp = now_or(now)
        async with self._locked(guild_id) as conn:
            banned = affected(
                await conn.execute(
                    "INSERT INTO banned_members (guild_id, member_id, reason, banned_by, "
                    "banned_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    guild_id,
                    member_id,
                    reason,
                    by,
                    stamp,
                )
            )
            if banned:
                await audit(conn, guild_id, by, "ban", reason or "", stamp, target_id=member_id)
        return banned > 0

    async def unban_member(
        self, guild_id: int, member_id: int, *, by: int, now: datetime | None = None
    ) -> bool:
        """Let a banned member use the bot again; False if they were not banned."""
        stamp = now_or(now)
        async with self._locked(guild_id) as conn:
            unbanned = affected(
                await conn.execute(
                    "DELETE FROM banned_members WHERE guild_id = $1 AND member_id = $2",
                    guild_id,
                    member_id,
                )
            )
            if unbanned:
                await audit(conn, guild_id, by, "unban", "", stamp, target_id=member_id)
        return unbanned > 0

    async def is_banned(self, guild_id: int, member_id: int) -> bool:
        """True if the member is banned from the bot in this server."""
        async with self._read() as conn:
            return await is_banned_in(conn, guild_id, member_id)

    async def banned_members(self, guild_id: int) -> list[Ban]:
        """The server's bans, oldest first."""
        async with self._read() as conn:
            rows = await conn.fetch(
                "SELECT member_id, reason, banned_by, banned_at FROM banned_members "
                "WHERE guild_id = $1 ORDER BY banned_at, member_id",
                guild_id,
            )
        return [
            Ban(
                guild_id=guild_id,
                member_id=int(r["member_id"]),
                reason=r["reason"],
                banned_by=int(r["banned_by"]),
                banned_at=time_of(r["banned_at"]),
            )
            for r in rows
        ]

    # -- blocklist ------------------------------------------------------------------------

    async def block_rules(self, guild_id: int) -> list[BlockRule]:
        """The server's blocklist, in the order rules were added."""
        async with self._read() as conn:
            rows = await conn.fetch(
                "SELECT id, kind, pattern FROM block_rules WHERE guild_id = $1 ORDER BY id",
                guild_id,
            )
        return [BlockRule(kind=r["kind"], pattern=r["pattern"], id=int(r["id"])) for r in rows]

    async def add_block_rule(
        self,
        guild_id: int,
        kind: RuleKind,
        pattern: str,
        *,
        by: int,
        now: datetime | None = None,
    ) -> BlockRule:
        """Store a blocklist rule as given (normalised and vetted by the caller); the stored
        rule, with its id. Adding a rule that exists returns the existing one."""
        stamp = now_or(now)
        async with self._locked(guild_id) as conn:
            existing = await conn.fetchval(
                "SELECT id FROM block_rules WHERE guild_id = $1 AND kind = $2 AND pattern = $3",
                guild_id,
                kind,
                pattern,
            )
            if existing is not None:
                return BlockRule(kind=kind, pattern=pattern, id=int(existing))
            rule_id = await conn.fetchval(
                "INSERT INTO block_rules (guild_id, kind, pattern, added_by, added_at) "
                "VALUES ($1, $2, $3, $4, $5) RETURNING id",
                guild_id,
                kind,
                pattern,
                by,
                stamp,
            )
            rule = BlockRule(kind=kind, pattern=pattern, id=int(rule_id))
            await audit(conn, guild_id, by, "block_add", f"#{rule.id} {kind} {pattern}", stamp)
        return rule

    async def remove_block_rule(
        self, guild_id: int, rule_id: int, *, by: int, now: datetime | None = None
    ) -> BlockRule | None:
        """Remove rule ``rule_id`` of this server; the removed rule, or None if none had it."""
        stamp = now_or(now)
        async with self._locked(guild_id) as conn:
            row = await conn.fetchrow(
                "DELETE FROM block_rules WHERE guild_id = $1 AND id = $2 RETURNING kind, pattern",
                guild_id,
                rule_id,
            )
            if row is None:
                return None
            rule = BlockRule(kind=row["kind"], pattern=row["pattern"], id=rule_id)
            await audit(
                conn, guild_id, by, "block_remove", f"#{rule_id} {rule.kind} {rule.pattern}", stamp
            )
        return rule

    # -- forgetting a member and the audit trail -------------------------------------------

    async def forget_member(
        self, guild_id: int, member_id: int, *, by: int, now: datetime | None = None
    ) -> ForgetReport:
        """Delete one member's prompts and jobs in this server.

        Kept: the credits they spent, as ledger rows under member id 0 with no job, so the
        server's pool stays right for the period; their ban, if any. Removed: their jobs
        (prompts, image and video links), grants and member resets; requests still waiting
        for a moderator are withdrawn first. The audit trail keeps the moderators' actions but
        no longer names the member. Raises :class:`MemberBusy` while one of their jobs is at
        the video service (forgetting it would lose track of a charge).
        """
        stamp = now_or(now)
        async with self._locked(guild_id) as conn:
            # Row locks on the open jobs: a job cannot start while it is being counted.
            busy = await conn.fetch(
                "SELECT id FROM jobs WHERE guild_id = $1 AND member_id = $2 "
                f"AND {OPEN} AND state <> 'pending_approval' FOR UPDATE",
                guild_id,
                member_id,
            )
            if busy:
                raise MemberBusy(len(busy))
            withdrawn = affected(
                await conn.execute(
                    "UPDATE usage_ledger SET state = 'released', settled_at = $3 WHERE state = "
                    "'reserved' AND job_id IN (SELECT id FROM jobs WHERE guild_id = $1 AND "
                    "member_id = $2 AND state = 'pending_approval')",
                    guild_id,
                    member_id,
                    stamp,
                )
            )
            anonymised = affected(
                await conn.execute(
                    "UPDATE usage_ledger SET member_id = $3 WHERE guild_id = $1 AND member_id = $2",
                    guild_id,
                    member_id,
                    FORGOTTEN,
                )
            )
            # Ledger rows keep their credits: the foreign key sets their job_id to NULL, and
            # the member's approval rows go with their jobs.
            deleted = affected(
                await conn.execute(
                    "DELETE FROM jobs WHERE guild_id = $1 AND member_id = $2", guild_id, member_id
                )
            )
            grants = affected(
                await conn.execute(
                    "DELETE FROM credit_grants WHERE guild_id = $1 AND member_id = $2",
                    guild_id,
                    member_id,
                )
            )
            await conn.execute(
                "DELETE FROM usage_resets WHERE guild_id = $1 AND member_id = $2",
                guild_id,
                member_id,
            )
            await conn.execute(
                "UPDATE mod_actions SET target_id = NULL WHERE guild_id = $1 AND target_id = $2",
                guild_id,
                member_id,
            )
            await audit(
                conn,
                guild_id,
                by,
                "forget",
                f"forgot a member: {deleted} jobs deleted, {anonymised} charges anonymised",
                stamp,
            )
        return ForgetReport(
            jobs_deleted=deleted,
            requests_withdrawn=withdrawn,
            ledger_rows_anonymised=anonymised,
            grants_deleted=grants,
        )

    async def audit_log(self, guild_id: int, *, limit: int = 25) -> list[AuditEntry]:
        """The server's latest moderator actions, newest first."""
        async with self._read() as conn:
            rows = await conn.fetch(
                "SELECT id, actor_id, action, target_id, detail, created_at FROM mod_actions "
                "WHERE guild_id = $1 ORDER BY id DESC LIMIT $2",
                guild_id,
                limit,
            )
        return [
            AuditEntry(
                id=int(r["id"]),
                guild_id=guild_id,
                actor_id=int(r["actor_id"]),
                action=r["action"],
                target_id=None if r["target_id"] is None else int(r["target_id"]),
                detail=r["detail"],
                created_at=time_of(r["created_at"]),
            )
            for r in rows
        ]
