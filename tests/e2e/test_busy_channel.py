"""A busy channel on a Discord that enforces its rate limits: ten videos at once, zero 429s."""

from __future__ import annotations

import asyncio

import pytest

from bot.config import QuotaConfig
from tests.harness.e2e import E2E, embed_titles

BUSY = QuotaConfig(
    member_credits=100, server_credits=1000, member_concurrent_jobs=5, server_concurrent_jobs=10
)


@pytest.mark.settings(
    quota=BUSY, cooldown_seconds=0.0, queue_seconds=1.0, run_seconds=1.0, status_edit_interval=0.5
)
async def test_ten_jobs_at_once_in_one_channel_all_end_right_without_a_429(e2e: E2E) -> None:
    emu = e2e.emu
    assert emu.rate_limits, "this test is about a Discord that enforces its limits"
    people = [emu.requester_id, emu.member_id, emu.moderator_id]
    await asyncio.gather(
        *(e2e.animate(f"kite number {n}", user_id=people[n % 3]) for n in range(10))
    )

    async def all_done() -> bool:
        statuses = e2e.status_messages()
        return (
            len(e2e.videos()) == 10
            and len(statuses) == 10
            and all("Video ready" in embed_titles(m) for m in statuses)
        )

    async with asyncio.timeout(90):
        while not await all_done():  # noqa: ASYNC110 - watching what members see
            await asyncio.sleep(0.2)
    assert emu.rate_limit_count == 0, emu.rate_limited
    # Each job's video was posted once.
    assert len({v["id"] for v in e2e.videos()}) == 10
