"""The provider's cost of each job, stored on it and summed per server and period (schema V4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.models import GuildDefaults, JobState, NewJob
from bot.quota import Limits, Period, period_window
from bot.store import Store
from tests.harness.store_calls import reserve_job

pytestmark = pytest.mark.store_backends("sqlite", "postgres")

GUILD, OTHER_GUILD, ALICE, BOB = 10, 20, 101, 102
NOON = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
DEFAULTS = GuildDefaults()


def request(guild_id: int, member_id: int) -> NewJob:
    return NewJob(
        guild_id=guild_id,
        channel_id=1,
        member_id=member_id,
        prompt="waves",
        image_url="https://cdn.example/a.png",
        last_frame_url=None,
        resolution="480p",
        duration=5,
    )


async def test_costs_are_kept_per_job_and_summed_for_the_period_even_after_a_forget(
    store: Store,
) -> None:
    limits = Limits(
        member_credits=100, server_credits=100, member_concurrent=9, server_concurrent=9
    )

    async def job(guild_id: int, member_id: int, when: datetime, usd: float | None) -> int:
        record = await reserve_job(
            store,
            request(guild_id, member_id),
            cost=1,
            limits=limits,
            window=period_window(Period.DAY, when),
            now=when,
        )
        if usd is not None:
            await store.set_provider_cost(record.id, usd, now=when)
        await store.finish_delivered(record.id, result_message_id=None, now=when)
        return record.id

    first = await job(GUILD, ALICE, NOON, 0.0875)
    await job(GUILD, BOB, NOON, 0.35)
    await job(GUILD, BOB, NOON, None)  # the provider did not say: not priced
    await job(GUILD, ALICE, NOON - timedelta(days=1), 1.0)  # yesterday
    await job(OTHER_GUILD, ALICE, NOON, 5.0)

    stored = await store.get_job(first)
    assert stored is not None and stored.cost_usd == pytest.approx(0.0875)
    pool = await store.pool_usage(GUILD, defaults=DEFAULTS, now=NOON)
    assert (pool.spent_usd, pool.priced_jobs) == (pytest.approx(0.4375), 2)

    # Forgetting a member deletes their jobs; the money they cost stays counted.
    await store.forget_member(GUILD, BOB, by=ALICE, now=NOON)
    pool = await store.pool_usage(GUILD, defaults=DEFAULTS, now=NOON)
    assert (pool.spent_usd, pool.priced_jobs) == (pytest.approx(0.4375), 2)
    # A reset forgives credits, never the money spent.
    await store.reset_usage(GUILD, None, defaults=DEFAULTS, by=ALICE, now=NOON)
    pool = await store.pool_usage(GUILD, defaults=DEFAULTS, now=NOON)
    assert pool.used == 0 and pool.spent_usd == pytest.approx(0.4375)


async def test_a_made_video_that_could_not_be_posted_still_counts_its_cost(
    store: Store,
) -> None:
    record = await reserve_job(
        store,
        request(GUILD, ALICE),
        cost=1,
        limits=Limits(member_credits=9, server_credits=9, member_concurrent=9, server_concurrent=9),
        window=period_window(Period.DAY, NOON),
        now=NOON,
    )
    await store.set_provider_cost(record.id, 0.175, now=NOON)
    await store.finish_failed(record.id, JobState.FAILED, error="not posted", now=NOON)
    pool = await store.pool_usage(GUILD, defaults=DEFAULTS, now=NOON)
    assert pool.used == 0 and pool.held == 0
    assert (pool.spent_usd, pool.priced_jobs) == (pytest.approx(0.175), 1)
    with pytest.raises(ValueError, match="not a cost"):
        await store.set_provider_cost(record.id, -0.01)
    with pytest.raises(ValueError, match="not a cost"):
        await store.set_provider_cost(record.id, float("nan"))
