"""Per-server moderation in the store: request gates, allowed channels, bans, the prompt
blocklist, forgetting a member and the audit trail.

Every change a moderator makes is one transaction that also appends to ``mod_actions``.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.errors import MemberBusy
from bot.models import AuditEntry, Ban, BlockRule, ForgetReport, RuleKind
from bot.store.sqlite.guild_sql import (
    StoreCore,
    audit,
    block_rules_in,
    is_banned_in,
    stamp_of,
)
from bot.store.sqlite.rows import OPEN, from_text

__all__ = ["FORGOTTEN", "ModerationMixin"]

log = logging.getLogger(__name__)

FORGOTTEN = 0
"""The member id a forgotten member's charges are kept under (no Discord id is 0)."""


class ModerationMixin(StoreCore):
    """Gates, channels, bans, blocklist, forget and audit; mixed into :class:`~bot.store.Store`."""

    # -- allowed channels -----------------------------------------------------------------

    async def allow_channel(
        self, guild_id: int, channel_id: int, *, by: int, now: datetime | None = None
    ) -> bool:
        """Add a channel to the allowed list (the first one restricts the bot to the list)."""
        stamp = stamp_of(now)
        async with self._write() as db:
            async with db.execute(
                "INSERT INTO allowed_channels (guild_id, channel_id, added_by, added_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (guild_id, channel_id, by, stamp),
            ) as cursor:
                added = cursor.rowcount > 0
            if added:
                await audit(
                    db, guild_id, by, "channel_allow", "allowed", stamp, target_id=channel_id
                )
        return added

    async def disallow_channel(
        self, guild_id: int, channel_id: int, *, by: int, now: datetime | None = None
    ) -> bool:
        """Remove a channel from the allowed list (an empty list allows every channel)."""
        stamp = stamp_of(now)
        async with self._write() as db:
            async with db.execute(
                "DELETE FROM allowed_channels WHERE guild_id = ? AND channel_id = ?",
                (guild_id, channel_id),
            ) as cursor:
                removed = cursor.rowcount > 0
            if removed:
                await audit(
                    db, guild_id, by, "channel_disallow", "removed", stamp, target_id=channel_id
                )
        return removed

    async def clear_channels(self, guild_id: int, *, by: int, now: datetime | None = None) -> int:
        """Allow every channel again; returns how many entries were removed."""
        stamp = stamp_of(now)
        async with self._write() as db:
            async with db.execute(
                "DELETE FROM allowed_channels WHERE guild_id = ?", (guild_id,)
            ) as cursor:
                removed = cursor.rowcount
            await audit(db, guild_id, by, "channels_clear", f"{removed} removed", stamp)
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
        stamp = stamp_of(now)
        async with self._write() as db:
            async with db.execute(
                "INSERT INTO banned_members (guild_id, member_id, reason, banned_by, banned_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (guild_id, member_id, reason, by, stamp),
            ) as cursor:
                banned = cursor.rowcount > 0
            if banned:
                await audit(db, guild_id, by, "ban", reason or "", stamp, target_id=member_id)
        return banned

    async def unban_member(
        self, guild_id: int, member_id: int, *, by: int, now: datetime | None = None
    ) -> bool:
        """Let a banned member use the bot again; False if they were not banned."""
        stamp = stamp_of(now)
        async with self._write() as db:
            async with db.execute(
                "DELETE FROM banned_members WHERE guild_id = ? AND member_id = ?",
                (guild_id, member_id),
            ) as cursor:
                unbanned = cursor.rowcount > 0
            if unbanned:
                await audit(db, guild_id, by, "unban", "", stamp, target_id=member_id)
        return unbanned

    async def is_banned(self, guild_id: int, member_id: int) -> bool:
        """True if the member is banned from the bot in this server."""
        async with self._read() as db:
            return await is_banned_in(db, guild_id, member_id)

    async def banned_members(self, guild_id: int) -> list[Ban]:
        """The server's bans, oldest first."""
        async with (
            self._read() as db,
            db.execute(
                "SELECT member_id, reason, banned_by, banned_at FROM banned_members "
                "WHERE guild_id = ? ORDER BY banned_at, member_id",
                (guild_id,),
            ) as cursor,
        ):
            rows = await cursor.fetchall()
        return [
            Ban(
                guild_id=guild_id,
                member_id=int(r["member_id"]),
                reason=r["reason"],
                banned_by=int(r["banned_by"]),
                banned_at=from_text(r["banned_at"]),
            )
            for r in rows
        ]

    # -- blocklist ------------------------------------------------------------------------

    async def block_rules(self, guild_id: int) -> list[BlockRule]:
        """The server's blocklist, in the order rules were added."""
        async with self._read() as db:
            return await block_rules_in(db, guild_id)

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
        stamp = stamp_of(now)
        async with self._write() as db:
            async with db.execute(
                "SELECT id FROM block_rules WHERE guild_id = ? AND kind = ? AND pattern = ?",
                (guild_id, kind, pattern),
            ) as cursor:
                existing = await cursor.fetchone()
            if existing is not None:
                return BlockRule(kind=kind, pattern=pattern, id=int(existing[0]))
            async with db.execute(
                "INSERT INTO block_rules (guild_id, kind, pattern, added_by, added_at) "
                "VALUES (?, ?, ?, ?, ?) RETURNING id",
                (guild_id, kind, pattern, by, stamp),
            ) as cursor:
                row = await cursor.fetchone()
            assert row is not None
            rule = BlockRule(kind=kind, pattern=pattern, id=int(row[0]))
            await audit(db, guild_id, by, "block_add", f"#{rule.id} {kind} {pattern}", stamp)
        return rule

    async def remove_block_rule(
        self, guild_id: int, rule_id: int, *, by: int, now: datetime | None = None
    ) -> BlockRule | None:
        """Remove rule ``rule_id`` of this server; the removed rule, or None if none had it."""
        stamp = stamp_of(now)
        async with self._write() as db:
            async with db.execute(
                "DELETE FROM block_rules WHERE guild_id = ? AND id = ? RETURNING kind, pattern",
                (guild_id, rule_id),
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return None
            rule = BlockRule(kind=row["kind"], pattern=row["pattern"], id=rule_id)
            await audit(
                db, guild_id, by, "block_remove", f"#{rule_id} {rule.kind} {rule.pattern}", stamp
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
        stamp = stamp_of(now)
        async with self._write() as db:
            async with db.execute(
                "SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND member_id = ? "
                f"AND {OPEN} AND state <> 'pending_approval'",
                (guild_id, member_id),
            ) as cursor:
                busy = await cursor.fetchone()
            assert busy is not None
            if int(busy[0]):
                raise MemberBusy(int(busy[0]))
            async with db.execute(
                "UPDATE usage_ledger SET state = 'released', settled_at = ? WHERE state = "
                "'reserved' AND job_id IN (SELECT id FROM jobs WHERE guild_id = ? AND "
                "member_id = ? AND state = 'pending_approval')",
                (stamp, guild_id, member_id),
            ) as cursor:
                withdrawn = cursor.rowcount
            async with db.execute(
                "UPDATE usage_ledger SET member_id = ? WHERE guild_id = ? AND member_id = ?",
                (FORGOTTEN, guild_id, member_id),
            ) as cursor:
                anonymised = cursor.rowcount
            # Ledger rows keep their credits: the foreign key sets their job_id to NULL, and
            # the member's approval rows go with their jobs.
            async with db.execute(
                "DELETE FROM jobs WHERE guild_id = ? AND member_id = ?", (guild_id, member_id)
            ) as cursor:
                deleted = cursor.rowcount
            async with db.execute(
                "DELETE FROM credit_grants WHERE guild_id = ? AND member_id = ?",
                (guild_id, member_id),
            ) as cursor:
                grants = cursor.rowcount
            await db.execute(
                "DELETE FROM usage_resets WHERE guild_id = ? AND member_id = ?",
                (guild_id, member_id),
            )
            await db.execute(
                "UPDATE mod_actions SET target_id = NULL WHERE guild_id = ? AND target_id = ?",
                (guild_id, member_id),
            )
            await audit(
                db,
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
        async with (
            self._read() as db,
            db.execute(
                "SELECT id, actor_id, action, target_id, detail, created_at FROM mod_actions "
                "WHERE guild_id = ? ORDER BY id DESC LIMIT ?",
                (guild_id, limit),
            ) as cursor,
        ):
            rows = await cursor.fetchall()
        return [
            AuditEntry(
                id=int(r["id"]),
                guild_id=guild_id,
                actor_id=int(r["actor_id"]),
                action=r["action"],
                target_id=None if r["target_id"] is None else int(r["target_id"]),
                detail=r["detail"],
                created_at=from_text(r["created_at"]),
            )
            for r in rows
        ]
