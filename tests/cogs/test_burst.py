"""A burst of /animate: every request acknowledged at once, the checks behind it a few at a time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.config import QuotaConfig
from cogs.animate.launcher import LAUNCHES_AT_ONCE
from tests.harness.discord_fakes import Member, eventually, invoke
from tests.harness.images import make_image
from tests.harness.worlds import World

ROOMY = QuotaConfig(
    member_credits=10_000,
    server_credits=10_000,
    member_concurrent_jobs=1000,
    server_concurrent_jobs=1000,
)
BURST = 3 * LAUNCHES_AT_ONCE


@pytest.mark.settings(quota=ROOMY, max_concurrent_jobs=1000)
async def test_a_burst_is_acknowledged_at_once_and_checked_a_few_at_a_time(world: World) -> None:
    png = make_image(640, 480)
    fetching = 0
    most = 0
    image_host = asyncio.Event()

    async def read(*_args: Any, **_kwargs: Any) -> bytes:
        # A slow image host: every download waits until it is let go.
        nonlocal fetching, most
        fetching += 1
        most = max(most, fetching)
        await image_host.wait()
        fetching -= 1
        return png

    interactions = [world.interaction(Member(f"member {n}")) for n in range(BURST)]
    asking = []
    for interaction in interactions:
        image: Any = world.image(png)
        image.read.side_effect = read
        command = invoke(world.bot.tree, interaction, "animate", image=image, prompt="a kite")
        asking.append(asyncio.create_task(command))

    async def all_acknowledged() -> bool:
        deferred = [i.response.defer.await_count for i in interactions]  # type: ignore[attr-defined]
        return all(deferred) and fetching == LAUNCHES_AT_ONCE

    # Every member is answered "thinking" at once; the images are fetched a few at a time.
    await eventually(all_acknowledged, within=60)
    assert most == LAUNCHES_AT_ONCE
    image_host.set()

    async def all_submitted() -> bool:
        return len(world.rc.submitted) == BURST

    # All of them reach the provider without waiting for their status posts (the channel
    # took the first one), which Discord's budget lets through five per five seconds.
    await eventually(all_submitted, within=60)
    for task in asking:
        task.cancel()
    await asyncio.gather(*asking, return_exceptions=True)
