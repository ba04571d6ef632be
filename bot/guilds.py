"""GuildAdmin: every change a server's moderators make, and the reads their commands show.

The operator's defaults (the config's `[quota]`) are given once, here; the store only stores.
Policy that decides what may be stored lives here too: word rules are normalised, regexes are
vetted before they reach the store, and the blocklist's size is capped.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime, timedelta

from bot.errors import GateClosed
from bot.models import (
    KEEP,
    ApprovalRequest,
    AuditEntry,
    Ban,
    BlockRule,
    CreditGrant,
    ForgetReport,
    GuildDefaults,
    GuildSettings,
    Keep,
    PoolUsage,
    RuleKind,
    Usage,
    UsageReset,
)
from bot.moderation.blocklist import MAX_BLOCK_RULES, MAX_REGEX_RULES, normalize_word
from bot.moderation.gates import RequestRefused
from bot.moderation.regexes import vet_regex
from bot.ops import metrics
from bot.quota import Period
from bot.store.protocol import Store


class GuildAdmin:
    """One server's budgets, switches, lists and approvals, for its moderators."""

    def __init__(
        self, *, store: Store, defaults: GuildDefaults, clock: Callable[[], datetime]
    ) -> None:
        self._store = store
        self.defaults = defaults
        """What a server gets until its moderators change it: the operator's `[quota]`."""
        self._clock = clock

    # -- reads -----------------------------------------------------------------------------

    async def settings(self, guild_id: int) -> GuildSettings:
        return await self._store.guild_settings(guild_id, self.defaults)

    async def usage(self, guild_id: int, member_id: int, role_ids: Collection[int] = ()) -> Usage:
        """A member's and the server's credits in the server's current period."""
        return await self._store.member_usage(
            guild_id, member_id, role_ids=role_ids, defaults=self.defaults, now=self._clock()
        )

    async def pool(self, guild_id: int) -> PoolUsage:
        return await self._store.pool_usage(guild_id, defaults=self.defaults, now=self._clock())

    async def bans(self, guild_id: int) -> list[Ban]:
        return await self._store.banned_members(guild_id)

    async def block_rules(self, guild_id: int) -> list[BlockRule]:
        return await self._store.block_rules(guild_id)

    async def audit(self, guild_id: int, *, limit: int = 25) -> list[AuditEntry]:
        return await self._store.audit_log(guild_id, limit=limit)

    # -- budgets ---------------------------------------------------------------------------

    async def set_budget(
        self,
        guild_id: int,
        *,
        by: int,
        period: Period | Keep | None = KEEP,
        server_credits: int | Keep | None = KEEP,
        member_credits: int | Keep | None = KEEP,
        member_concurrent: int | Keep | None = KEEP,
        server_concurrent: int | Keep | None = KEEP,
    ) -> None:
        """Change some budgets; ``None`` puts one back to the default, ``KEEP`` leaves it."""
        await self._store.set_guild_budget(
            guild_id,
            by=by,
            now=self._clock(),
            period=period,
            server_credits=server_credits,
            member_credits=member_credits,
            member_concurrent=member_concurrent,
            server_concurrent=server_concurrent,
        )

    async def set_role_limit(
        self, guild_id: int, role_id: int, credits: int | None, *, by: int
    ) -> None:
        await self._store.set_role_limit(guild_id, role_id, credits, by=by, now=self._clock())

    async def grant(
        self, guild_id: int, member_id: int, credits: int, *, by: int, reason: str | None = None
    ) -> CreditGrant:
        return await self._store.grant_credits(
            guild_id,
            member_id,
            credits,
            defaults=self.defaults,
            by=by,
            now=self._clock(),
            reason=reason,
        )

    async def reset(self, guild_id: int, member_id: int | None, *, by: int) -> UsageReset:
        return await self._store.reset_usage(
            guild_id, member_id, defaults=self.defaults, by=by, now=self._clock()
        )

    # -- switches and channels -------------------------------------------------------------

    async def set_approvals(self, guild_id: int, enabled: bool, *, by: int) -> None:
        await self._store.set_approvals(guild_id, enabled, by=by, now=self._clock())

    async def set_paused(self, guild_id: int, paused: bool, *, by: int) -> None:
        await self._store.set_paused(guild_id, paused, by=by, now=self._clock())

    async def set_modlog_channel(self, guild_id: int, channel_id: int | None, *, by: int) -> None:
        await self._store.set_modlog_channel(guild_id, channel_id, by=by, now=self._clock())

    async def allow_channel(self, guild_id: int, channel_id: int, *, by: int) -> bool:
        return await self._store.allow_channel(guild_id, channel_id, by=by, now=self._clock())

    async def disallow_channel(self, guild_id: int, channel_id: int, *, by: int) -> bool:
        return await self._store.disallow_channel(guild_id, channel_id, by=by, now=self._clock())

    async def clear_channels(self, guild_id: int, *, by: int) -> int:
        return await self._store.clear_channels(guild_id, by=by, now=self._clock())

    # -- members ---------------------------------------------------------------------------

    async def ban(self, guild_id: int, member_id: int, *, by: int, reason: str | None) -> bool:
        return await self._store.ban_member(
            guild_id, member_id, by=by, reason=reason, now=self._clock()
        )

    async def unban(self, guild_id: int, member_id: int, *, by: int) -> bool:
        return await self._store.unban_member(guild_id, member_id, by=by, now=self._clock())

    async def forget(self, guild_id: int, member_id: int, *, by: int) -> ForgetReport:
        """Delete a member's prompts and jobs here; raises `MemberBusy` while one runs."""
        return await self._store.forget_member(guild_id, member_id, by=by, now=self._clock())

    # -- the blocklist ---------------------------------------------------------------------

    async def add_block_rule(
        self, guild_id: int, kind: RuleKind, pattern: str, *, by: int
    ) -> BlockRule:
        """Add a word or a regex; raises ``ValueError`` (moderator-facing) when it may not be.

        A word is normalised like the prompts it is matched against; a regex must compile
        with RE2 (linear-time, so it cannot stall the bot) or is refused with the reason.
        """
        if kind == "word":
            pattern = normalize_word(pattern)
        elif kind == "regex":
            pattern = await vet_regex(pattern)
        else:
            raise ValueError(f"A rule is a word or a regex, not {kind!r}.")
        rules = await self._store.block_rules(guild_id)
        if not any(r.kind == kind and r.pattern == pattern for r in rules):
            if len(rules) >= MAX_BLOCK_RULES:
                raise ValueError(f"A server can have at most {MAX_BLOCK_RULES} blocklist rules.")
            regexes = sum(r.kind == "regex" for r in rules)
            if kind == "regex" and regexes >= MAX_REGEX_RULES:
                raise ValueError(f"A server can have at most {MAX_REGEX_RULES} regex rules.")
        return await self._store.add_block_rule(guild_id, kind, pattern, by=by, now=self._clock())

    async def remove_block_rule(self, guild_id: int, rule_id: int, *, by: int) -> BlockRule | None:
        return await self._store.remove_block_rule(guild_id, rule_id, by=by, now=self._clock())

    # -- approvals -------------------------------------------------------------------------

    async def approval(self, job_id: int) -> ApprovalRequest | None:
        """The request for ``job_id`` if it ever went to the moderators."""
        return await self._store.get_approval(job_id)

    async def approve(self, guild_id: int, job_id: int, *, by: int) -> ApprovalRequest:
        """Let an over-cap request run on the pool; the caller starts the job afterwards.

        Admitted anew: its credits move to the pool of the period it runs in, and the
        server's job cap holds. Raises :class:`~bot.errors.QuotaExceeded` (the request keeps
        waiting) when that pool or cap is full.
        """
        try:
            return await self._store.approve_request(
                guild_id, job_id, by=by, now=self._clock(), defaults=self.defaults
            )
        except GateClosed as closed:
            raise RequestRefused.from_gate(closed) from None

    async def expire_approvals(self, max_age: timedelta) -> list[ApprovalRequest]:
        """End every request that waited longer than ``max_age``; the ones ended."""
        now = self._clock()
        ended = await self._store.expire_approvals(older_than=now - max_age, now=now)
        for request in ended:
            metrics.job_settled(request.job)
        return ended

    async def deny(
        self, guild_id: int, job_id: int, *, by: int, reason: str | None
    ) -> ApprovalRequest:
        denied = await self._store.deny_request(
            guild_id, job_id, by=by, reason=reason, now=self._clock()
        )
        if denied.changed:
            metrics.job_settled(denied.job)
        return denied

    async def set_approval_message(self, job_id: int, message_id: int) -> None:
        await self._store.set_approval_message(job_id, message_id)
