"""A statement of the store failing at each step of a job (a locked or full database).

The failures happen inside SQLite (tests/harness/store_faults.py); what is asserted is what
the member sees, what reaches the provider and the channel, and what they are charged.
"""

from __future__ import annotations

import pytest

from bot.models import JobState
from tests.harness.discord_fakes import eventually, member_saw
from tests.harness.store_faults import StatementFaults
from tests.harness.worlds import World


async def charged(world: World) -> tuple[int, int]:
    usage = await world.bot.guild_admin.usage(world.channel.guild_id, world.alice.id)
    return usage.member_used, usage.member_reserved


def videos(world: World) -> int:
    return len(world.channel.file_bytes)


# Each step of a job's run that writes, by the statement that writes it.
STEPS = {
    "submitted": r"SET request_id = ",
    "progress": r"SET state = '(queued|running)', queue_position",
    "video url": r"SET video_url = ",
    "posting": r"SET posting_at = ",
    "delivered": r"SET state = 'delivered'",
    "lease renewal": r"SET lease_until = '[^']*' WHERE owner = ",
}


@pytest.mark.parametrize("step", list(STEPS))
async def test_a_failed_write_at_any_step_still_delivers_once_and_charges_once(
    world: World, step: str
) -> None:
    faults = await StatementFaults.install(world.store)  # type: ignore[arg-type]
    faults.fail(STEPS[step])
    world.rc.plan_next_job(queue_seconds=0.3, run_seconds=0.3)
    await world.animate(world.alice)
    job = await world.only_job()
    await world.wait_for(job.id, JobState.DELIVERED, JobState.FAILED)
    done = await world.store.get_job(job.id)
    assert done is not None and done.state is JobState.DELIVERED, done
    assert faults.failed, f"no statement matched {STEPS[step]!r}"
    assert videos(world) == 1
    assert len(world.rc.submitted) == 1
    assert await charged(world) == (1, 0)


async def test_a_failed_write_before_the_submit_ends_the_job_and_refunds_it(world: World) -> None:
    # Nothing reached the provider: the job ends plainly rather than being guessed at.
    faults = await StatementFaults.install(world.store)  # type: ignore[arg-type]
    faults.fail(r"SET state = 'submitting'")
    await world.animate(world.alice)
    job = await world.only_job()
    await world.wait_for(job.id, JobState.FAILED)
    assert faults.failed
    assert world.rc.submitted == []
    assert await charged(world) == (0, 0)

    async def shown() -> bool:
        status = world.channel.by_id(job.status_message_id or 0).current_embed()
        return status is not None and "Failed" in (status.title or "")

    await eventually(shown)  # the member reads that it failed


async def test_a_failed_write_when_a_job_fails_still_refunds_it(world: World) -> None:
    faults = await StatementFaults.install(world.store)  # type: ignore[arg-type]
    faults.fail(r"SET state = 'failed', error = ")
    world.rc.plan_next_job("failed", queue_seconds=0.2, run_seconds=0.2)
    await world.animate(world.alice)
    job = await world.only_job()
    await world.wait_for(job.id, JobState.FAILED)
    assert faults.failed
    assert await charged(world) == (0, 0)
    assert videos(world) == 0


async def test_a_failed_reservation_tells_the_member_and_changes_nothing(world: World) -> None:
    faults = await StatementFaults.install(world.store)  # type: ignore[arg-type]
    faults.fail(r"INSERT INTO jobs")
    interaction = await world.animate(world.alice)
    assert faults.failed
    assert "Nothing was charged" in member_saw(interaction)[-1]
    assert await world.store.recent_jobs(world.channel.guild_id, world.alice.id) == []
    assert await charged(world) == (0, 0)
    assert world.rc.submitted == []
