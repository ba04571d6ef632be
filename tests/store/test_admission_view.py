"""One read for admission: the same answers as the four reads it replaces, in one snapshot,
on both stores."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.errors import QuotaExceeded
from bot.models import GuildDefaults, NewJob
from bot.quota import Period
from bot.store import Store
from bot.store.sqlite.inline import run_inline

pytestmark = pytest.mark.store_backends("sqlite", "postgres")

GUILD = 3000
CHANNEL = 3001
MEMBER = 31
BANNED = 32
MODERATOR = 39
ROLE = 377
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DEFAULTS = GuildDefaults(
    member_credits=10, server_credits=100, member_concurrent=3, server_concurrent=20
)


def request(member: int = MEMBER) -> NewJob:
    return NewJob(
        guild_id=GUILD,
        channel_id=CHANNEL,
        member_id=member,
        prompt="a lighthouse in the fog",
        image_url="https://cdn.discordapp.com/attachments/1/2/first.png",
        last_frame_url=None,
        resolution="720p",
        duration=5,
    )


async def test_the_admission_view_answers_as_the_four_reads_do(store: Store) -> None:
    await store.set_guild_budget(GUILD, by=MODERATOR, now=NOW, member_credits=7)
    await store.allow_channel(GUILD, CHANNEL, by=MODERATOR, now=NOW)
    await store.set_role_limit(GUILD, ROLE, 12, by=MODERATOR, now=NOW)
    await store.ban_member(GUILD, BANNED, by=MODERATOR, now=NOW)
    await store.add_block_rule(GUILD, "word", "dragon", by=MODERATOR, now=NOW)
    await store.add_block_rule(GUILD, "regex", "fl[iy]ing", by=MODERATOR, now=NOW)
    await store.grant_credits(GUILD, MEMBER, 3, defaults=DEFAULTS, by=MODERATOR, now=NOW)
    await store.reserve_request(request(), cost=2, role_ids=(ROLE,), defaults=DEFAULTS, now=NOW)

    view = await store.admission_view(GUILD, MEMBER, role_ids=(ROLE,), defaults=DEFAULTS, now=NOW)

    assert view.settings == await store.guild_settings(GUILD, DEFAULTS)
    assert view.settings.allowed_channels == frozenset({CHANNEL})
    assert view.banned is False
    assert list(view.rules) == await store.block_rules(GUILD)
    assert [rule.pattern for rule in view.rules] == ["dragon", "fl[iy]ing"]
    assert view.usage == await store.member_usage(
        GUILD, MEMBER, role_ids=(ROLE,), defaults=DEFAULTS, now=NOW
    )
    # What the member would be told: the role's cap plus this period's grant, 2 held.
    assert (view.usage.member_limit, view.usage.member_reserved) == (15, 2)
    assert view.usage.member_active_jobs == 1

    banned = await store.admission_view(GUILD, BANNED, role_ids=(), defaults=DEFAULTS, now=NOW)
    assert banned.banned is True
    assert banned.usage.member_limit == 7


async def test_a_fresh_server_reads_as_its_defaults(store: Store) -> None:
    view = await store.admission_view(GUILD, MEMBER, role_ids=(), defaults=DEFAULTS, now=NOW)
    assert not view.banned
    assert view.rules == ()
    assert not view.settings.paused
    assert view.settings.allowed_channels == frozenset()
    assert (view.usage.member_limit, view.usage.server_limit) == (10, 100)
    assert view.usage.member_used == view.usage.server_used == 0


@pytest.mark.parametrize("own", [Period.DAY, Period.WEEK, Period.MONTH, None])
async def test_the_view_counts_in_the_period_the_server_uses(
    store: Store, own: Period | None
) -> None:
    """The server's own period (or, None, the default: a month here) decides which charges
    and grants count: today's, Monday's, the 2nd's and the last day of October's count or not
    as member_usage says."""
    defaults = GuildDefaults(member_credits=100, period=Period.MONTH, member_concurrent=10)
    if own is not None:
        await store.set_guild_budget(GUILD, by=MODERATOR, now=NOW, period=own)
    # NOW is Friday 2026-11-20: Monday the 16th is in its week, the 2nd in its month only,
    # October 31st in neither.
    for when, cost in ((NOW, 1), (NOW - timedelta(days=4), 2), (NOW - timedelta(days=18), 4)):
        await store.reserve_request(request(), cost=cost, role_ids=(), defaults=defaults, now=when)
    await store.reserve_request(
        request(), cost=8, role_ids=(), defaults=defaults, now=NOW - timedelta(days=20)
    )
    await store.grant_credits(
        GUILD, MEMBER, 5, defaults=defaults, by=MODERATOR, now=NOW - timedelta(days=10)
    )

    view = await store.admission_view(GUILD, MEMBER, role_ids=(), defaults=defaults, now=NOW)

    assert view.usage == await store.member_usage(
        GUILD, MEMBER, role_ids=(), defaults=defaults, now=NOW
    )
    held, limit = {
        Period.DAY: (1, 100),
        Period.WEEK: (3, 100),
        Period.MONTH: (7, 105),
        None: (7, 105),
    }[own]
    assert (view.usage.member_reserved, view.usage.member_limit) == (held, limit)
    assert view.usage.member_active_jobs == 4


async def test_a_refused_reservation_in_one_call_writes_nothing(store: Store) -> None:
    tight = GuildDefaults(member_credits=3, server_credits=100, member_concurrent=3)
    await store.reserve_request(request(), cost=2, role_ids=(), defaults=tight, now=NOW)
    with pytest.raises(QuotaExceeded):
        await store.reserve_request(request(), cost=2, role_ids=(), defaults=tight, now=NOW)
    usage = await store.member_usage(GUILD, MEMBER, role_ids=(), defaults=tight, now=NOW)
    assert (usage.member_reserved, usage.member_active_jobs) == (2, 1)


async def test_racing_reservations_in_one_call_never_overspend(store: Store) -> None:
    pool = GuildDefaults(
        member_credits=1000, server_credits=30, member_concurrent=100, server_concurrent=100
    )

    async def one(member: int) -> bool:
        try:
            await store.reserve_request(
                request(member), cost=1, role_ids=(), defaults=pool, now=NOW
            )
        except QuotaExceeded:
            return False
        return True

    accepted = await asyncio.gather(*(one(100 + n) for n in range(50)))
    assert sum(accepted) == 30
    view = await store.admission_view(GUILD, MEMBER, role_ids=(), defaults=pool, now=NOW)
    assert view.usage.server_reserved == 30


def test_an_inline_transaction_may_not_wait_for_anything() -> None:
    async def waits() -> None:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="waited"):
        run_inline(waits())
