"""Store calls the tests make often, written with the store's real methods.

The store has no methods for tests alone: a test that wants "reserve with these limits in this
window" says it here, as the product would, through the server's settings.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from bot.admission import Admission, Request
from bot.guilds import GuildAdmin
from bot.jobs.breaker import CircuitBreaker
from bot.jobs.runner import utcnow
from bot.models import BlockRule, GuildDefaults, JobRecord, NewJob, RuleKind, Usage
from bot.moderation.blocklist import BLOCKLIST_BUDGET
from bot.quota import DEFAULT_COSTS, Limits, PeriodWindow
from bot.store import Store


def defaults_for(limits: Limits, window: PeriodWindow) -> GuildDefaults:
    """Server defaults that give every member exactly ``limits`` in ``window``'s period."""
    return GuildDefaults(
        period=window.period,
        server_credits=limits.server_credits,
        member_credits=limits.member_credits,
        member_concurrent=limits.member_concurrent,
        server_concurrent=limits.server_concurrent,
    )


async def reserve_job(
    store: Store, job: NewJob, *, cost: int, limits: Limits, window: PeriodWindow, now: datetime
) -> JobRecord:
    """Accept ``job`` under ``limits``, counted in ``window`` (``now`` falls inside it)."""
    return await store.reserve_request(
        job, cost=cost, role_ids=(), defaults=defaults_for(limits, window), now=now
    )


async def usage_in(
    store: Store, guild_id: int, member_id: int, *, limits: Limits, window: PeriodWindow
) -> Usage:
    """A member's usage in ``window`` under ``limits``."""
    return await store.member_usage(
        guild_id,
        member_id,
        role_ids=(),
        defaults=defaults_for(limits, window),
        now=window.start,
    )


async def effective_limits(
    store: Store,
    guild_id: int,
    member_id: int,
    role_ids: Collection[int],
    *,
    defaults: GuildDefaults,
    now: datetime,
) -> Limits:
    """A member's budgets now: role caps and grants applied, as a reservation would see them."""
    settings = await store.guild_settings(guild_id, defaults)
    seen = await store.member_usage(
        guild_id, member_id, role_ids=role_ids, defaults=defaults, now=now
    )
    return Limits(
        member_credits=seen.member_limit,
        server_credits=seen.server_limit,
        member_concurrent=settings.member_concurrent,
        server_concurrent=settings.server_concurrent,
    )


async def _no_probe() -> None:
    raise AssertionError("the breaker is closed: nothing probes the video service here")


async def check_gates(
    store: Store,
    guild_id: int,
    member_id: int,
    channel_id: int,
    *,
    prompt: str | None = None,
    parent_channel_id: int | None = None,
    blocklist_budget: float = BLOCKLIST_BUDGET,
) -> None:
    """Screen a request as /animate does (gates, then the blocklist); raises RequestRefused."""
    admission = Admission(
        store=store,
        probe=_no_probe,
        breaker=CircuitBreaker(),
        defaults=GuildDefaults(),
        costs=DEFAULT_COSTS,
        clock=utcnow,
        blocklist_budget=blocklist_budget,
    )
    job = NewJob(
        guild_id, channel_id, member_id, prompt or "", "https://cdn.test/a.png", None, "480p", 5
    )
    await admission.screen(Request(job, parent_channel_id=parent_channel_id))


async def add_block_rule(
    store: Store,
    guild_id: int,
    kind: RuleKind,
    pattern: str,
    *,
    by: int,
    now: datetime | None = None,
) -> BlockRule:
    """Add a rule the way a moderator's command does: normalised, vetted, capped."""
    clock = (lambda: now) if now is not None else utcnow
    admin = GuildAdmin(store=store, defaults=GuildDefaults(), clock=clock)
    return await admin.add_block_rule(guild_id, kind, pattern, by=by)


async def unfinished_jobs(store: Store) -> list[JobRecord]:
    """Every job a restart would take and run, oldest first (once every lease ran out)."""
    return await store.claimable_jobs(datetime(9999, 1, 1, tzinfo=UTC))
