"""A slow paid submit is waited for, as RunComfy's own clients wait, not cut off as unknown."""

from __future__ import annotations

from bot.models import JobState
from tests.harness.worlds import World


async def test_a_submit_slower_than_the_read_timeout_still_delivers_once(world: World) -> None:
    # Polls give up after 2 s in this world; the submit answers after 3 s.
    assert world.bot.config.runcomfy.read_timeout < 3.0
    world.rc.submit_latency = 3.0
    await world.animate(world.alice)
    job = await world.wait_for(
        (await world.only_job()).id, JobState.DELIVERED, JobState.UNKNOWN_SUBMISSION
    )
    assert job.state is JobState.DELIVERED
    assert len(world.rc.submitted) == 1
