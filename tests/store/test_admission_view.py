"""One read for admission: the same answers as the four reads it replaces, in one snapshot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.errors import QuotaExceeded
from bot.models import GuildDefaults, NewJob
from bot.store import Store, open_store
from bot.store.sqlite.inline import run_inline

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


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(tmp_path / "bot.db") as opened:
        yield opened


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
