"""Per-server budgets on real databases, SQLite and PostgreSQL: settings, periods, roles,
grants, resets, the reserve -> commit/release cycle, races for the last credits, and the
approval queue."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from bot.errors import GateClosed, JobNotFound, QuotaExceeded
from bot.models import FAILURE_STATES, GuildDefaults, JobRecord, JobState, NewJob
from bot.quota import Period, period_window
from bot.store import Store, open_store
from bot.store.sqlite.schema import apply_migrations, load_migrations
from tests.harness.backends import Backend
from tests.harness.store_calls import check_gates, effective_limits, unfinished_jobs

pytestmark = pytest.mark.store_backends("sqlite", "postgres")

GUILD = 1000
OTHER_GUILD = 2000
MEMBER = 11
OTHER = 12
MOD = 99
ROLE_VIP = 501
ROLE_PATRON = 502
# A Friday, mid-month.
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DEFAULTS = GuildDefaults(
    period=Period.DAY, server_credits=100, member_credits=10, member_concurrent=5,
    server_concurrent=50,
)  # fmt: skip


def request(
    *, guild: int = GUILD, member: int = MEMBER, channel: int | None = None, prompt: str = "a cat"
) -> NewJob:
    return NewJob(
        guild_id=guild,
        channel_id=guild + 1 if channel is None else channel,
        member_id=member,
        prompt=prompt,
        image_url="https://cdn.discordapp.com/attachments/1/2/first.png",
        last_frame_url=None,
        resolution="480p",
        duration=5,
    )


async def ask(
    store: Store,
    *,
    guild: int = GUILD,
    member: int = MEMBER,
    cost: int = 1,
    roles: Collection[int] = (),
    now: datetime = NOW,
    defaults: GuildDefaults = DEFAULTS,
    channel: int | None = None,
) -> JobRecord:
    return await store.reserve_request(
        request(guild=guild, member=member, channel=channel),
        cost=cost,
        role_ids=roles,
        defaults=defaults,
        now=now,
    )


async def refused(store: Store, **kwargs: Any) -> QuotaExceeded:
    with pytest.raises(QuotaExceeded) as info:
        await ask(store, **kwargs)
    return info.value


async def left(
    store: Store, member: int = MEMBER, *, now: datetime = NOW, roles: Collection[int] = ()
) -> tuple[int, int]:
    """(member credits left, server pool left) as /usage shows them."""
    usage = await store.member_usage(GUILD, member, role_ids=roles, defaults=DEFAULTS, now=now)
    return usage.member_left, usage.server_left


async def count_rows(backend: Backend, table: str) -> int:
    [(n,)] = await backend.rows(f"SELECT COUNT(*) FROM {table}")
    return int(n)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A SQLite file, for the tests of SQLite's own migrations."""
    return tmp_path / "bot.db"


# -- a fresh database -----------------------------------------------------------------------


async def test_fresh_database_allows_everything_with_config_defaults(store: Store) -> None:
    settings = await store.guild_settings(GUILD, DEFAULTS)
    assert (settings.period, settings.server_credits, settings.member_credits) == (
        Period.DAY,
        100,
        10,
    )
    assert (settings.member_concurrent, settings.server_concurrent) == (5, 50)
    assert not settings.paused
    assert not settings.approvals
    assert settings.modlog_channel_id is None
    assert settings.allowed_channels == frozenset()
    assert settings.channel_allowed(123456) and settings.channel_allowed(654321)
    assert settings.customised == frozenset()
    assert dict(settings.role_limits) == {}
    assert not await store.is_banned(GUILD, MEMBER)
    assert await store.block_rules(GUILD) == []
    await check_gates(store, GUILD, MEMBER, 777, prompt="anything at all")

    # The strictest config still lets each member run one job at a time.
    strict = GuildDefaults(member_concurrent=1, server_concurrent=1)
    job = await ask(store, defaults=strict)
    assert job.state is JobState.ACCEPTED
    with pytest.raises(ValueError, match="member_concurrent"):
        GuildDefaults(member_concurrent=0)


# -- settings ----------------------------------------------------------------------------


async def test_budget_changes_apply_at_once_and_none_restores_the_default(store: Store) -> None:
    await store.set_guild_budget(GUILD, by=MOD, server_credits=3, member_credits=2)
    settings = await store.guild_settings(GUILD, DEFAULTS)
    assert (settings.server_credits, settings.member_credits) == (3, 2)
    assert settings.customised == {"server_credits", "member_credits"}
    assert (await store.guild_settings(OTHER_GUILD, DEFAULTS)).server_credits == 100

    await ask(store, cost=2)
    assert (await refused(store, cost=1)).refusal.reason == "member_credits"
    assert (await refused(store, member=OTHER, cost=2)).refusal.reason == "server_credits"

    # The operator's config default reaches every value a server did not set itself.
    richer = GuildDefaults(member_credits=50, server_credits=500)
    assert (await store.guild_settings(GUILD, richer)).member_credits == 2
    await store.set_guild_budget(GUILD, by=MOD, member_credits=None)
    settings = await store.guild_settings(GUILD, richer)
    assert (settings.member_credits, settings.customised) == (50, {"server_credits"})


async def test_bad_budget_values_change_nothing(store: Store) -> None:
    await store.set_guild_budget(GUILD, by=MOD, server_credits=40)
    for kwargs in (
        {"member_concurrent": 0},
        {"server_concurrent": 0},
        {"server_credits": -1},
        {"member_credits": 2_000_000_000},
        {},
    ):
        with pytest.raises(ValueError):
            await store.set_guild_budget(GUILD, by=MOD, **kwargs)
    settings = await store.guild_settings(GUILD, DEFAULTS)
    assert (settings.server_credits, settings.member_concurrent) == (40, 5)


async def test_settings_made_in_one_store_bind_another_on_the_same_database(
    backend: Backend,
) -> None:
    async with backend.open() as admin, backend.open() as worker:
        await ask(worker, cost=4)
        await admin.set_guild_budget(GUILD, by=MOD, server_credits=5)
        refusal = (await refused(worker, member=OTHER, cost=2)).refusal
        assert (refusal.reason, refusal.server_used, refusal.server_limit) == (
            "server_credits",
            4,
            5,
        )


# -- periods -----------------------------------------------------------------------------


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "last_moment", "next_start"),
    [
        (Period.DAY, utc(2026, 11, 20, 23, 59, 59), utc(2026, 11, 21)),
        (Period.WEEK, utc(2026, 11, 22, 23, 59, 59), utc(2026, 11, 23)),
        (Period.MONTH, utc(2026, 11, 30, 23, 59, 59), utc(2026, 12, 1)),
        (Period.WEEK, utc(2027, 1, 3, 23, 59, 59), utc(2027, 1, 4)),
    ],
)
async def test_each_server_resets_at_the_end_of_its_own_period(
    store: Store, period: Period, last_moment: datetime, next_start: datetime
) -> None:
    await store.set_guild_budget(GUILD, by=MOD, period=period, member_credits=3)
    first = await ask(store, cost=3, now=last_moment - timedelta(hours=20))
    assert await store.finish_delivered(first.id, result_message_id=None, now=last_moment)
    refusal = (await refused(store, cost=1, now=last_moment)).refusal
    assert refusal.reason == "member_credits"
    assert refusal.resets_at == next_start

    job = await ask(store, cost=3, now=next_start)
    assert job.period_key == period_window(period, next_start).key
    usage = await store.member_usage(GUILD, MEMBER, role_ids=(), defaults=DEFAULTS, now=next_start)
    assert (usage.member_used, usage.member_reserved, usage.member_left) == (0, 3, 0)
    assert usage.resets_at == period_window(period, next_start).end


async def test_servers_with_different_periods_reset_independently(store: Store) -> None:
    await store.set_guild_budget(GUILD, by=MOD, period=Period.WEEK, member_credits=2)
    await store.set_guild_budget(OTHER_GUILD, by=MOD, period=Period.DAY, member_credits=2)
    friday, saturday = NOW, NOW + timedelta(days=1)
    await ask(store, guild=GUILD, cost=2, now=friday)
    await ask(store, guild=OTHER_GUILD, cost=2, now=friday)
    assert (await refused(store, guild=GUILD, now=saturday)).refusal.reason == "member_credits"
    assert (await ask(store, guild=OTHER_GUILD, cost=2, now=saturday)).period_key == "2026-11-21"


async def test_switching_day_to_week_keeps_counting_what_was_spent_today(store: Store) -> None:
    await store.set_guild_budget(GUILD, by=MOD, member_credits=4)
    await ask(store, cost=3)
    await store.set_guild_budget(GUILD, by=MOD, period=Period.WEEK)
    assert await left(store) == (1, 97)
    assert (await refused(store, cost=2)).refusal.reason == "member_credits"
    # Yesterday's spending is part of this week too.
    await store.set_guild_budget(GUILD, by=MOD, period=Period.DAY)
    await ask(store, cost=1, now=NOW - timedelta(days=1))
    await store.set_guild_budget(GUILD, by=MOD, period=Period.WEEK)
    assert await left(store) == (0, 96)


# -- role limits and grants --------------------------------------------------------------


async def test_a_member_gets_the_most_generous_of_default_and_roles(store: Store) -> None:
    await store.set_role_limit(GUILD, ROLE_VIP, 25, by=MOD)
    await store.set_role_limit(GUILD, ROLE_PATRON, 40, by=MOD)
    await store.set_role_limit(GUILD, 503, 3, by=MOD)  # below the default of 10: no effect

    async def cap(roles: Collection[int]) -> int:
        limits = await effective_limits(store, GUILD, MEMBER, roles, defaults=DEFAULTS, now=NOW)
        return limits.member_credits

    assert await cap(()) == 10
    assert await cap((503,)) == 10
    assert await cap((ROLE_VIP,)) == 25
    assert await cap((ROLE_VIP, ROLE_PATRON, 503)) == 40
    assert await cap((12345,)) == 10

    await ask(store, cost=30, roles=(ROLE_PATRON,))
    assert (await refused(store, cost=11, roles=(ROLE_PATRON,))).refusal.member_limit == 40
    assert (await refused(store, cost=1, roles=(ROLE_VIP,))).refusal.reason == "member_credits"

    await store.set_role_limit(GUILD, ROLE_PATRON, None, by=MOD)
    assert await cap((ROLE_PATRON,)) == 10
    # Role limits belong to their server.
    other = await effective_limits(
        store, OTHER_GUILD, MEMBER, (ROLE_VIP,), defaults=DEFAULTS, now=NOW
    )
    assert other.member_credits == 10


async def test_a_grant_raises_the_cap_for_the_current_period_only(store: Store) -> None:
    await ask(store, cost=10)
    assert (await refused(store, cost=5)).refusal.reason == "member_credits"
    grant = await store.grant_credits(
        GUILD, MEMBER, 5, defaults=DEFAULTS, by=MOD, now=NOW, reason="contest winner"
    )
    assert (grant.period_key, grant.period_total) == ("2026-11-20", 5)
    await ask(store, cost=5)
    assert await left(store) == (0, 85)

    tomorrow = NOW + timedelta(days=1)
    limits = await effective_limits(store, GUILD, MEMBER, (), defaults=DEFAULTS, now=tomorrow)
    assert limits.member_credits == 10

    # Grants stack, a negative one takes credits back, and a grant never enlarges the pool.
    await store.grant_credits(GUILD, OTHER, 500, defaults=DEFAULTS, by=MOD, now=NOW)
    taken = await store.grant_credits(GUILD, OTHER, -100, defaults=DEFAULTS, by=MOD, now=NOW)
    assert taken.period_total == 400
    assert (await refused(store, member=OTHER, cost=86)).refusal.reason == "server_credits"
    with pytest.raises(ValueError, match="non-zero"):
        await store.grant_credits(GUILD, OTHER, 0, defaults=DEFAULTS, by=MOD)


async def test_grants_follow_the_servers_period(store: Store) -> None:
    await store.set_guild_budget(GUILD, by=MOD, period=Period.MONTH)
    await store.grant_credits(GUILD, MEMBER, 7, defaults=DEFAULTS, by=MOD, now=NOW)
    later = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    december = datetime(2026, 12, 1, tzinfo=UTC)
    for when, expected in ((later, 17), (december, 10)):
        limits = await effective_limits(store, GUILD, MEMBER, (), defaults=DEFAULTS, now=when)
        assert limits.member_credits == expected


# -- resets ------------------------------------------------------------------------------


async def test_member_reset_frees_the_cap_but_the_pool_keeps_counting(
    store: Store, backend: Backend
) -> None:
    delivered = await ask(store, cost=6)
    await store.finish_delivered(delivered.id, result_message_id=None, now=NOW)
    running = await ask(store, cost=4)
    assert await left(store) == (0, 90)

    reset = await store.reset_usage(GUILD, MEMBER, defaults=DEFAULTS, by=MOD, now=NOW)
    assert (reset.forgiven, reset.member_id, reset.period_key) == (10, MEMBER, "2026-11-20")
    assert await left(store) == (10, 90)
    # The job that was running at the reset no longer counts for the member, whatever it does.
    await store.finish_delivered(running.id, result_message_id=None, now=NOW)
    assert await left(store) == (10, 90)
    await ask(store, cost=10)
    assert await left(store) == (0, 80)
    # The history is intact: every charge is still in the ledger.
    assert await count_rows(backend, "usage_ledger") == 3
    assert await count_rows(backend, "usage_resets") == 1


async def test_server_reset_frees_the_pool_and_every_cap(store: Store) -> None:
    await store.set_guild_budget(GUILD, by=MOD, server_credits=12)
    await ask(store, cost=10)
    await ask(store, member=OTHER, cost=2)
    assert (await refused(store, member=OTHER, cost=1)).refusal.reason == "server_credits"

    reset = await store.reset_usage(GUILD, None, defaults=DEFAULTS, by=MOD, now=NOW)
    assert (reset.forgiven, reset.member_id) == (12, None)
    assert await left(store) == (10, 12)
    assert await left(store, OTHER) == (10, 12)
    await ask(store, member=OTHER, cost=10)
    assert await left(store, OTHER) == (0, 2)
    entries = await store.audit_log(GUILD)
    assert entries[0].action == "reset"
    assert "12 credits forgiven" in entries[0].detail


async def test_reset_applies_to_the_current_period_only(store: Store) -> None:
    await ask(store, cost=10, now=NOW - timedelta(days=1))
    await store.reset_usage(GUILD, MEMBER, defaults=DEFAULTS, by=MOD, now=NOW)
    usage = await store.member_usage(
        GUILD, MEMBER, role_ids=(), defaults=DEFAULTS, now=NOW - timedelta(days=1)
    )
    # Resets never rewrite history: seen from yesterday, yesterday's charge still counts;
    # and today's spending after the reset counts in full.
    assert usage.member_reserved == 10
    await ask(store, cost=10)
    assert (await refused(store)).refusal.member_used == 10


# -- the reserve -> commit / release cycle -------------------------------------------------


async def test_delivery_commits_and_every_failure_releases(store: Store) -> None:
    delivered = await ask(store, cost=2)
    assert await store.finish_delivered(delivered.id, result_message_id=5, now=NOW)
    failed = []
    for state in sorted(FAILURE_STATES):
        job = await ask(store, cost=1)
        assert await store.finish_failed(job.id, state, error="provider said no", now=NOW)
        failed.append(job)
    usage = await store.member_usage(GUILD, MEMBER, role_ids=(), defaults=DEFAULTS, now=NOW)
    assert (usage.member_used, usage.member_reserved, usage.member_left) == (2, 0, 8)
    assert (usage.server_used, usage.server_reserved, usage.member_active_jobs) == (2, 0, 0)


async def test_refusals_charge_nothing_and_say_when_it_resets(
    store: Store, backend: Backend
) -> None:
    await store.set_guild_budget(GUILD, by=MOD, member_concurrent=1)
    await ask(store, cost=3)
    refusal = (await refused(store, cost=1)).refusal
    assert (refusal.reason, refusal.active_member) == ("member_concurrent", 1)
    assert refusal.resets_at == datetime(2026, 11, 21, tzinfo=UTC)
    assert await count_rows(backend, "jobs") == await count_rows(backend, "usage_ledger") == 1


# -- races -------------------------------------------------------------------------------


async def race(store: Store, members: int, cost: int) -> list[str | None]:
    async def attempt(member: int) -> str | None:
        try:
            await ask(store, member=member, cost=cost)
        except QuotaExceeded as refused:
            return refused.refusal.reason
        return None

    return list(await asyncio.gather(*(attempt(1 + n) for n in range(members))))


async def test_many_members_racing_for_the_last_credits_of_a_pool(
    store: Store, backend: Backend
) -> None:
    await store.set_guild_budget(GUILD, by=MOD, server_credits=31, server_concurrent=1000)
    await ask(store, member=5000, cost=10)  # 21 credits left
    outcomes = await race(store, 150, cost=2)
    assert outcomes.count(None) == 10
    assert set(outcomes) == {None, "server_credits"}
    usage = await store.member_usage(GUILD, 1, role_ids=(), defaults=DEFAULTS, now=NOW)
    assert (usage.server_reserved, usage.server_left) == (30, 1)
    assert await count_rows(backend, "jobs") == 11


async def test_racing_two_stores_hold_the_pool_exactly(backend: Backend) -> None:
    async with backend.open() as first:
        await first.set_guild_budget(GUILD, by=MOD, server_credits=45, server_concurrent=1000)
    async with backend.open() as first, backend.open() as second:
        outcomes = await asyncio.gather(race(first, 60, cost=1), race(second, 60, cost=1))
        assert sum(o.count(None) for o in outcomes) == 45
        usage = await second.member_usage(GUILD, 1, role_ids=(), defaults=DEFAULTS, now=NOW)
        assert usage.server_left == 0


async def test_server_concurrency_cap_holds_under_a_race(store: Store) -> None:
    await store.set_guild_budget(GUILD, by=MOD, server_concurrent=7)
    outcomes = await race(store, 40, cost=1)
    assert outcomes.count(None) == 7
    assert set(outcomes) == {None, "server_concurrent"}


async def test_racing_requests_with_approvals_never_overfill_the_pool(store: Store) -> None:
    await store.set_guild_budget(GUILD, by=MOD, server_credits=20, member_credits=1)
    await store.set_approvals(GUILD, True, by=MOD)
    outcomes = await race(store, 30, cost=2)  # every request is over the cap of 1
    assert outcomes.count(None) == 10
    pending = await store.pending_approvals(GUILD)
    assert len(pending) == 10
    usage = await store.member_usage(GUILD, 1, role_ids=(), defaults=DEFAULTS, now=NOW)
    assert (usage.server_reserved, usage.server_left) == (20, 0)


# -- approvals ---------------------------------------------------------------------------


async def approvals_on(store: Store, *, member_credits: int = 4) -> None:
    await store.set_guild_budget(GUILD, by=MOD, member_credits=member_credits)
    await store.set_approvals(GUILD, True, by=MOD)


async def test_over_the_cap_goes_to_the_moderators_holding_pool_credits(store: Store) -> None:
    await approvals_on(store)
    await ask(store, cost=3)
    job = await ask(store, cost=5)
    assert job.state is JobState.PENDING_APPROVAL
    assert not job.state.is_terminal
    usage = await store.member_usage(GUILD, MEMBER, role_ids=(), defaults=DEFAULTS, now=NOW)
    assert (usage.member_used, usage.member_reserved, usage.member_pending) == (0, 3, 5)
    assert (usage.server_reserved, usage.server_left) == (8, 92)
    # Waiting requests are not run by the job runner, but are listed for the mod-log buttons.
    assert [j.id for j in await unfinished_jobs(store)] == [job.id - 1]
    [waiting] = await store.pending_approvals()
    assert waiting.job == job
    assert (waiting.approval.decision, waiting.approval.requested_at) == (None, NOW)
    await store.set_approval_message(job.id, 4242)
    got = await store.get_approval(job.id)
    assert got is not None
    assert got.approval.message_id == 4242


async def test_approval_runs_against_the_pool_not_the_member_cap(store: Store) -> None:
    await approvals_on(store)
    await ask(store, cost=4)
    job = await ask(store, cost=6)
    later = NOW + timedelta(minutes=45)
    approved = await store.approve_request(GUILD, job.id, by=MOD, now=later)
    assert approved.changed
    assert approved.job.state is JobState.ACCEPTED
    assert approved.job.created_at == later  # the runner's deadline counts from approval
    assert (approved.approval.decision, approved.approval.decided_by) == ("approved", MOD)
    assert await unfinished_jobs(store) != []
    assert await store.finish_delivered(job.id, result_message_id=1, now=later)

    usage = await store.member_usage(GUILD, MEMBER, role_ids=(), defaults=DEFAULTS, now=later)
    assert (usage.member_used, usage.member_reserved, usage.member_left) == (0, 4, 0)
    assert (usage.member_approved, usage.member_pending) == (6, 0)
    assert (usage.server_used, usage.server_reserved, usage.server_left) == (6, 4, 90)

    again = await store.deny_request(GUILD, job.id, by=MOD, reason="too late")
    assert not again.changed
    assert again.job.state is JobState.DELIVERED


async def test_a_request_approved_after_a_reset_counts_in_full_in_the_new_period(
    store: Store,
) -> None:
    await approvals_on(store)
    yesterday = NOW - timedelta(days=1)
    await ask(store, cost=4, now=yesterday)
    waiting = await ask(store, cost=5, now=yesterday)
    assert waiting.state is JobState.PENDING_APPROVAL
    # Today another member spends, then a moderator resets the whole server.
    await ask(store, member=OTHER, cost=2)
    await store.reset_usage(GUILD, None, defaults=DEFAULTS, by=MOD, now=NOW)
    assert await left(store) == (4, 100)

    # Yesterday's request is approved after the reset: it is made and paid today, so the
    # reset (made before) forgives none of it.
    later = NOW + timedelta(hours=1)
    approved = await store.approve_request(GUILD, waiting.id, by=MOD, now=later, defaults=DEFAULTS)
    assert approved.changed
    assert await left(store, now=later) == (4, 95)
    usage = await store.member_usage(GUILD, MEMBER, role_ids=(), defaults=DEFAULTS, now=later)
    assert (usage.member_approved, usage.server_reserved) == (5, 5)
    pool = await store.pool_usage(GUILD, defaults=DEFAULTS, now=later)
    assert (pool.used, pool.held) == (0, 5)
    await store.finish_delivered(waiting.id, result_message_id=1, now=later)
    pool = await store.pool_usage(GUILD, defaults=DEFAULTS, now=later)
    assert (pool.used, pool.held) == (5, 0)
    # A reset made after the approval forgives it like any other charge of the period.
    await store.reset_usage(GUILD, None, defaults=DEFAULTS, by=MOD, now=later)
    assert await left(store, now=later) == (4, 100)


async def test_denial_releases_the_credits_and_says_why(store: Store) -> None:
    await approvals_on(store)
    job = await ask(store, cost=5)
    denied = await store.deny_request(GUILD, job.id, by=MOD, reason="not on this server")
    assert denied.changed
    assert denied.job.state is JobState.CANCELLED
    assert denied.job.error == "A moderator denied this request: not on this server"
    assert (denied.approval.decision, denied.approval.reason) == ("denied", "not on this server")
    assert await left(store) == (4, 100)
    assert not (await store.approve_request(GUILD, job.id, by=MOD)).changed
    assert await store.pending_approvals() == []


async def test_approvals_off_or_a_short_pool_refuse_outright(store: Store) -> None:
    await store.set_guild_budget(GUILD, by=MOD, member_credits=4, server_credits=10)
    assert (await refused(store, cost=5)).refusal.reason == "member_credits"
    await store.set_approvals(GUILD, True, by=MOD)
    assert (await refused(store, cost=11)).refusal.reason == "server_credits"
    assert (await ask(store, cost=10)).state is JobState.PENDING_APPROVAL


async def test_waiting_requests_count_for_their_member_not_the_server(store: Store) -> None:
    await approvals_on(store)
    await store.set_guild_budget(GUILD, by=MOD, member_concurrent=1, server_concurrent=1)
    pending = await ask(store, cost=5)
    assert pending.state is JobState.PENDING_APPROVAL
    assert (await refused(store, cost=1)).refusal.reason == "member_concurrent"
    # The unanswered request does not hold up the rest of the server.
    assert (await ask(store, member=OTHER, cost=1)).state is JobState.ACCEPTED
    # An approval is admitted anew: with the server's cap reached it waits (and stays waiting).
    with pytest.raises(QuotaExceeded) as refusal:
        await store.approve_request(GUILD, pending.id, by=MOD)
    assert refusal.value.refusal.reason == "server_concurrent"
    assert (await store.get_job(pending.id)).state is JobState.PENDING_APPROVAL  # type: ignore[union-attr]


async def test_no_approvals_while_paused_or_from_another_server(store: Store) -> None:
    await approvals_on(store)
    job = await ask(store, cost=5)
    with pytest.raises(JobNotFound):
        await store.approve_request(OTHER_GUILD, job.id, by=MOD)
    with pytest.raises(JobNotFound):
        await store.deny_request(OTHER_GUILD, job.id, by=MOD)
    plain = await ask(store, member=OTHER, cost=1)
    with pytest.raises(JobNotFound):
        await store.approve_request(GUILD, plain.id, by=MOD)
    await store.set_paused(GUILD, True, by=MOD)
    with pytest.raises(GateClosed) as info:
        await store.approve_request(GUILD, job.id, by=MOD)
    assert info.value.reason == "paused"
    await store.set_paused(GUILD, False, by=MOD)
    assert (await store.approve_request(GUILD, job.id, by=MOD)).changed


async def test_requester_can_withdraw_and_old_requests_expire(store: Store) -> None:
    await approvals_on(store)
    mine = await ask(store, cost=5)
    with pytest.raises(JobNotFound):
        await store.withdraw_request(mine.id, member_id=OTHER)
    withdrawn = await store.withdraw_request(mine.id, member_id=MEMBER)
    assert withdrawn.job.error == "You withdrew this request."
    old = await ask(store, member=OTHER, cost=5, now=NOW - timedelta(hours=30))
    fresh = await ask(store, member=OTHER + 1, cost=5)
    ended = await store.expire_approvals(older_than=NOW - timedelta(hours=24), now=NOW)
    assert [r.job.id for r in ended] == [old.id]
    assert ended[0].job.error == "No moderator answered this request in time."
    assert ended[0].approval.decision == "expired"
    assert [r.job.id for r in await store.pending_approvals(GUILD)] == [fresh.id]
    assert await left(store, OTHER) == (4, 95)


async def test_a_waiting_request_survives_a_restart(backend: Backend) -> None:
    async with backend.open() as store:
        await approvals_on(store)
        job = await ask(store, cost=6)
    async with backend.open() as store:
        [waiting] = await store.pending_approvals(GUILD)
        assert waiting.job.id == job.id
        assert (await store.approve_request(GUILD, job.id, by=MOD)).job.state is JobState.ACCEPTED


# -- gates inside the reservation ----------------------------------------------------------


async def test_reservation_rechecks_pause_ban_and_channel(store: Store, backend: Backend) -> None:
    await store.set_paused(GUILD, True, by=MOD)
    with pytest.raises(GateClosed, match="paused"):
        await ask(store)
    await store.set_paused(GUILD, False, by=MOD)
    await store.ban_member(GUILD, MEMBER, by=MOD)
    with pytest.raises(GateClosed, match="banned"):
        await ask(store)
    await store.allow_channel(GUILD, 555, by=MOD)
    with pytest.raises(GateClosed) as info:
        await ask(store, member=OTHER)
    assert info.value.reason == "channel"
    assert info.value.allowed_channels == {555}
    assert await count_rows(backend, "jobs") == 0
    assert (await ask(store, member=OTHER, channel=555)).state is JobState.ACCEPTED


# -- upgrading an existing database ----------------------------------------------------------


async def test_upgrade_from_version_1_keeps_jobs_charges_and_ids(db_path: Path) -> None:
    db = await aiosqlite.connect(db_path, isolation_level=None)
    await db.execute("PRAGMA foreign_keys = ON")
    await apply_migrations(db, load_migrations()[:1])
    stamp = NOW.isoformat(timespec="microseconds")
    for job_id, state in ((1, "delivered"), (2, "running"), (3, "failed")):
        await db.execute(
            "INSERT INTO jobs (id, guild_id, channel_id, member_id, prompt, image_url, "
            "resolution, duration, credits, state, period_key, created_at, updated_at) "
            "VALUES (?, ?, 1, ?, 'p', 'u', '480p', 5, 2, ?, '2026-11-20', ?, ?)",
            (job_id, GUILD, MEMBER, state, stamp, stamp),
        )
        ledger_state = {"delivered": "committed", "running": "reserved", "failed": "released"}
        await db.execute(
            "INSERT INTO usage_ledger (job_id, guild_id, member_id, credits, state, "
            "period_key, created_at, settled_at) VALUES (?, ?, ?, 2, ?, '2026-11-20', ?, ?)",
            (job_id, GUILD, MEMBER, ledger_state[state], stamp,
             None if state == "running" else stamp),
        )  # fmt: skip
    # The newest job is gone (by hand): its id must still never come back.
    await db.execute("DELETE FROM usage_ledger WHERE job_id = 3")
    await db.execute("DELETE FROM jobs WHERE id = 3")
    await db.close()

    async with open_store(db_path) as store:
        assert await store.schema_version() == load_migrations()[-1].version
        usage = await store.member_usage(GUILD, MEMBER, role_ids=(), defaults=DEFAULTS, now=NOW)
        assert (usage.member_used, usage.member_reserved, usage.member_active_jobs) == (2, 2, 1)
        assert [j.id for j in await unfinished_jobs(store)] == [2]
        assert (await ask(store)).id == 4


@pytest.mark.parametrize("version", [4, 5])
async def test_upgrade_to_marks_keeps_resets_and_counts_requests_approved_after_them(
    db_path: Path, version: int
) -> None:
    """A V4 or V5 database where yesterday's request (the oldest ledger row) was approved
    after today's server reset: the old rule forgave it; from V6 on it counts, and the rest of
    the history keeps its meaning."""
    db = await aiosqlite.connect(db_path, isolation_level=None)
    await db.execute("PRAGMA foreign_keys = ON")
    migrations = load_migrations()
    assert [m.version for m in migrations[:version]] == list(range(1, version + 1))
    await apply_migrations(db, migrations[:version])

    def at(when: datetime) -> str:
        return when.isoformat(timespec="microseconds")

    approved_at, after = NOW + timedelta(hours=1), NOW + timedelta(hours=2)
    # (job, member, credits, ledger state, basis, ledger created_at)
    history = (
        (1, MEMBER, 5, "reserved", "approved", approved_at),  # asked yesterday, moved today
        (2, OTHER, 2, "committed", "cap", NOW - timedelta(minutes=1)),  # before the reset
        (3, OTHER, 3, "reserved", "cap", after),  # after the reset
    )
    for job_id, member, credits, state, basis, created in history:
        await db.execute(
            "INSERT INTO jobs (id, guild_id, channel_id, member_id, prompt, image_url, "
            "resolution, duration, credits, state, period_key, created_at, updated_at) "
            "VALUES (?, ?, 1, ?, 'p', 'u', '480p', 5, ?, ?, '2026-11-20', ?, ?)",
            (job_id, GUILD, member, credits,
             "running" if state == "reserved" else "delivered", at(created), at(created)),
        )  # fmt: skip
        await db.execute(
            "INSERT INTO usage_ledger (job_id, guild_id, member_id, credits, state, basis, "
            "period_key, created_at, settled_at) VALUES (?, ?, ?, ?, ?, ?, '2026-11-20', ?, ?)",
            (job_id, GUILD, member, credits, state, basis, at(created),
             None if state == "reserved" else at(created)),
        )  # fmt: skip
    # The server reset at NOW, written when the ledger's largest id was 2.
    await db.execute(
        "INSERT INTO usage_resets (guild_id, member_id, ledger_mark, window_start, forgiven, "
        "period_key, reset_by, created_at) VALUES (?, NULL, 2, ?, 2, '2026-11-20', ?, ?)",
        (GUILD, at(period_window(Period.DAY, NOW).start), MOD, at(NOW)),
    )
    await db.close()

    later = NOW + timedelta(hours=3)
    async with open_store(db_path) as store:
        pool = await store.pool_usage(GUILD, defaults=DEFAULTS, now=later)
        # Job 2 stays forgiven; jobs 1 and 3 were charged after the reset and count.
        assert (pool.used, pool.held) == (0, 8)
        usage = await store.member_usage(GUILD, MEMBER, role_ids=(), defaults=DEFAULTS, now=later)
        assert usage.member_approved == 5
        # New charges and resets take their marks after the whole history.
        await ask(store, member=OTHER, cost=1, now=later)
        assert (await store.pool_usage(GUILD, defaults=DEFAULTS, now=later)).held == 9
        await store.reset_usage(GUILD, None, defaults=DEFAULTS, by=MOD, now=later)
        assert await left(store, now=later) == (10, 100)
        await ask(store, cost=2, now=later)
        assert await left(store, now=later) == (8, 98)


async def test_a_daily_reset_does_not_forgive_earlier_days_of_a_new_weekly_period(
    store: Store,
) -> None:
    await store.set_guild_budget(GUILD, by=MOD, member_credits=20)
    await ask(store, cost=3, now=NOW - timedelta(days=2))  # Wednesday
    await ask(store, cost=5)  # Friday
    await store.reset_usage(GUILD, MEMBER, defaults=DEFAULTS, by=MOD, now=NOW)
    assert await left(store) == (20, 95)
    await store.set_guild_budget(GUILD, by=MOD, period=Period.WEEK)
    # Friday's charge was forgiven; Wednesday's was never part of the reset.
    assert await left(store) == (17, 92)
