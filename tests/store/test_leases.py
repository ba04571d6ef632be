"""Who drives each job, on both stores: leases claimed by one process at a time, renewed and
handed back by their owner, and every write of a runner that lost its job changing nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.models import JobRecord, JobState, NewJob
from bot.quota import Limits, Period, period_window
from bot.store import Store
from tests.harness.backends import Backend
from tests.harness.store_calls import defaults_for, reserve_job, usage_in

pytestmark = pytest.mark.store_backends("sqlite", "postgres")

GUILD = 1000
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = period_window(Period.DAY, NOW)
LIMITS = Limits(member_credits=50, server_credits=500, member_concurrent=50, server_concurrent=50)
LIMITS_DEFAULTS = defaults_for(LIMITS, TODAY)
LEASE = timedelta(seconds=30)


async def new_job(store: Store, member: int = 11, cost: int = 2) -> JobRecord:
    job = NewJob(GUILD, GUILD + 1, member, "a cat", "https://cdn.test/a.png", None, "480p", 5)
    return await reserve_job(store, job, cost=cost, limits=LIMITS, window=TODAY, now=NOW)


async def test_a_new_job_is_claimed_once_and_its_owner_may_claim_it_again(store: Store) -> None:
    job = await new_job(store)
    assert [j.id for j in await store.claimable_jobs(NOW)] == [job.id]
    mine = await store.claim_job(job.id, owner="a", until=NOW + LEASE, now=NOW)
    assert mine is not None
    assert (mine.owner, mine.lease_until) == ("a", NOW + LEASE)
    assert await store.claimable_jobs(NOW) == []
    assert await store.claim_job(job.id, owner="b", until=NOW + LEASE, now=NOW) is None
    again = await store.claim_job(job.id, owner="a", until=NOW + 2 * LEASE, now=NOW)
    assert again is not None and again.lease_until == NOW + 2 * LEASE


async def test_a_lease_that_ran_out_passes_to_another_process(store: Store) -> None:
    job = await new_job(store)
    assert await store.claim_job(job.id, owner="a", until=NOW + LEASE, now=NOW)
    later = NOW + LEASE + timedelta(seconds=1)
    assert [j.id for j in await store.claimable_jobs(later)] == [job.id]
    taken = await store.claim_job(job.id, owner="b", until=later + LEASE, now=later)
    assert taken is not None and taken.owner == "b"
    # The old owner's renewal finds nothing to renew, and its writes change nothing.
    assert await store.renew_leases("a", [job.id], until=later + LEASE) == set()
    assert not await store.mark_submitting(job.id, later, owner="a")
    assert not await store.finish_failed(
        job.id, JobState.FAILED, error="stale runner", now=later, owner="a"
    )
    assert not await store.finish_delivered(job.id, result_message_id=1, now=later, owner="a")
    assert await store.record_crash(job.id, owner="a", retry_at=later, now=later) == 0
    assert not await store.release_lease(job.id, owner="a")
    current = await store.get_job(job.id)
    assert current is not None
    assert (current.state, current.owner) == (JobState.ACCEPTED, "b")
    # The new owner's do.
    assert await store.mark_submitting(job.id, later, owner="b")


async def test_renewal_keeps_only_the_owners_open_jobs(store: Store) -> None:
    mine, theirs, ended = [await new_job(store, member=n) for n in (1, 2, 3)]
    for job, owner in ((mine, "a"), (theirs, "b"), (ended, "a")):
        assert await store.claim_job(job.id, owner=owner, until=NOW + LEASE, now=NOW)
    assert await store.finish_delivered(ended.id, result_message_id=None, now=NOW, owner="a")
    renewed = await store.renew_leases("a", [mine.id, theirs.id, ended.id], until=NOW + 3 * LEASE)
    assert renewed == {mine.id}
    assert await store.renew_leases("a", [], until=NOW) == set()
    kept = await store.get_job(mine.id)
    assert kept is not None and kept.lease_until == NOW + 3 * LEASE
    done = await store.get_job(ended.id)
    assert done is not None and (done.owner, done.lease_until) == (None, None)


async def test_a_job_handed_back_waits_until_its_retry_time(store: Store) -> None:
    job = await new_job(store)
    assert await store.claim_job(job.id, owner="a", until=NOW + LEASE, now=NOW)
    retry = NOW + timedelta(seconds=10)
    assert await store.record_crash(job.id, owner="a", retry_at=retry, now=NOW) == 1
    assert await store.claimable_jobs(NOW) == []
    assert await store.claim_job(job.id, owner="b", until=NOW + LEASE, now=NOW) is None
    after = retry + timedelta(microseconds=1)
    assert await store.claim_job(job.id, owner="b", until=after + LEASE, now=after)
    assert await store.record_crash(job.id, owner="b", retry_at=after, now=after) == 2
    assert await store.claim_job(job.id, owner="c", until=after + LEASE, now=after + LEASE)
    assert await store.release_lease(job.id, owner="c")
    released = await store.get_job(job.id)
    assert released is not None and (released.owner, released.attempts) == (None, 2)
    assert [j.id for j in await store.claimable_jobs(after)] == [job.id]


async def test_posting_is_marked_only_by_the_owner_of_a_delivering_job(store: Store) -> None:
    job = await new_job(store)
    assert await store.claim_job(job.id, owner="a", until=NOW + LEASE, now=NOW)
    assert not await store.mark_posting(job.id, owner="a", now=NOW)  # not delivering yet
    assert await store.mark_submitting(job.id, NOW, owner="a")
    await store.set_submission(
        job.id, request_id="r", status_url="s", result_url="r", cancel_url="c", now=NOW
    )
    assert await store.set_progress(
        job.id, JobState.DELIVERING, queue_position=None, now=NOW, owner="a"
    )
    assert not await store.mark_posting(job.id, owner="b", now=NOW)
    posting = NOW + timedelta(seconds=3)
    assert await store.mark_posting(job.id, owner="a", now=posting)
    marked = await store.get_job(job.id)
    assert marked is not None and marked.posting_at == posting


async def test_requests_waiting_for_a_moderator_are_never_claimed(store: Store) -> None:
    await store.set_approvals(GUILD, True, by=99)
    await store.set_guild_budget(GUILD, by=99, member_credits=1)
    job = NewJob(GUILD, GUILD + 1, 11, "a cat", "https://cdn.test/a.png", None, "480p", 5)
    pending = await store.reserve_request(
        job,
        cost=5,
        role_ids=(),
        defaults=LIMITS_DEFAULTS,
        now=NOW,
        owner="a",
        lease_until=NOW + LEASE,
    )
    assert pending.state is JobState.PENDING_APPROVAL
    assert pending.owner is None
    assert await store.claimable_jobs(NOW) == []
    assert await store.claim_job(pending.id, owner="a", until=NOW + LEASE, now=NOW) is None


async def test_a_job_born_leased_is_not_claimable_by_others(store: Store) -> None:
    job = NewJob(GUILD, GUILD + 1, 11, "a cat", "https://cdn.test/a.png", None, "480p", 5)
    born = await store.reserve_request(
        job,
        cost=1,
        role_ids=(),
        defaults=LIMITS_DEFAULTS,
        now=NOW,
        owner="a",
        lease_until=NOW + LEASE,
    )
    assert (born.state, born.owner, born.lease_until) == (JobState.ACCEPTED, "a", NOW + LEASE)
    assert await store.claimable_jobs(NOW) == []
    assert await store.claim_job(born.id, owner="b", until=NOW + LEASE, now=NOW) is None


# -- several processes --------------------------------------------------------------------


async def test_processes_racing_for_one_expired_job_leave_exactly_one_owner(
    backend: Backend,
) -> None:
    async with backend.open() as first:
        job = await new_job(first)
        assert await first.claim_job(job.id, owner="dead", until=NOW, now=NOW)
    later = NOW + timedelta(seconds=1)
    async with backend.open() as a, backend.open() as b, backend.open() as c:
        stores = [a, b, c]
        for _round in range(5):
            claims = await asyncio.gather(
                *(
                    store.claim_job(
                        job.id, owner=f"p{n}", until=later + timedelta(minutes=1), now=later
                    )
                    for n, store in enumerate(stores * 10)
                )
            )
            winners = {claim.owner for claim in claims if claim is not None}
            # Owner pN may claim again what pN already holds; nobody else may.
            assert len(winners) == 1
            [owner] = winners
            held = await a.get_job(job.id)
            assert held is not None and held.owner == owner
            assert await a.release_lease(job.id, owner=owner, retry_at=NOW)


async def test_a_runner_that_lost_its_job_never_settles_it(backend: Backend) -> None:
    async with backend.open() as old, backend.open() as new:
        job = await new_job(old, cost=4)
        assert await old.claim_job(job.id, owner="old", until=NOW + LEASE, now=NOW)
        later = NOW + 2 * LEASE
        assert await new.claim_job(job.id, owner="new", until=later + LEASE, now=later)
        outcomes = await asyncio.gather(
            old.finish_failed(job.id, JobState.FAILED, error="stale", now=later, owner="old"),
            new.finish_delivered(job.id, result_message_id=7, now=later, owner="new"),
        )
        assert outcomes == [False, True]
        usage = await usage_in(new, GUILD, 11, limits=LIMITS, window=TODAY)
        assert (usage.member_used, usage.member_reserved) == (4, 0)


async def test_a_cancel_and_the_submit_of_an_unsent_job_never_both_happen(store: Store) -> None:
    job = await new_job(store)
    assert await store.claim_job(job.id, owner="a", until=NOW + LEASE, now=NOW)
    # A click in another process ends the job "a" holds: "a" can no longer send it.
    assert await store.cancel_unsent(job.id, error="Cancelled by its requester.", now=NOW)
    assert not await store.mark_submitting(job.id, NOW, owner="a")
    ended = await store.get_job(job.id)
    assert ended is not None
    assert (ended.state, ended.error, ended.owner) == (
        JobState.CANCELLED,
        "Cancelled by its requester.",
        None,
    )
    usage = await usage_in(store, GUILD, 11, limits=LIMITS, window=TODAY)
    assert (usage.member_used, usage.member_reserved) == (0, 0)
    # A job whose submit started is never ended by a cancel.
    sent = await new_job(store, member=12)
    assert await store.mark_submitting(sent.id, NOW)
    assert not await store.cancel_unsent(sent.id, error="too late", now=NOW)
    current = await store.get_job(sent.id)
    assert current is not None and current.state is JobState.SUBMITTING

    # Racing, job after job: exactly one of the two happens each time.
    for member in range(20, 40):
        raced = await new_job(store, member=member)
        cancelled, submitting = await asyncio.gather(
            store.cancel_unsent(raced.id, error="x", now=NOW),
            store.mark_submitting(raced.id, NOW),
        )
        assert cancelled != submitting
