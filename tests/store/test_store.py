"""The store on real databases, SQLite and PostgreSQL: migrations, the job life cycle, quota
reservations, races for the last credits."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import bot
from bot.errors import JobNotFound, QuotaExceeded
from bot.models import FAILURE_STATES, JobRecord, JobState, NewJob
from bot.quota import Limits, Period, PeriodWindow, period_window
from bot.store import Store, open_store
from bot.store.sqlite.schema import load_migrations, split_statements
from tests.harness.backends import Backend
from tests.harness.store_calls import reserve_job, unfinished_jobs, usage_in

pytestmark = pytest.mark.store_backends("sqlite", "postgres")

GUILD = 1000
OTHER_GUILD = 2000
MEMBER = 11
OTHER_MEMBER = 12
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = period_window(Period.DAY, NOW)
LIMITS = Limits(member_credits=10, server_credits=100, member_concurrent=5, server_concurrent=50)
LATEST_VERSION = load_migrations()[-1].version
REPO = Path(bot.__file__).resolve().parent.parent


def new_job(
    *,
    guild: int = GUILD,
    member: int = MEMBER,
    resolution: str = "480p",
    duration: int = 5,
    prompt: str = "a cat turns its head",
) -> NewJob:
    return NewJob(
        guild_id=guild,
        channel_id=guild + 1,
        member_id=member,
        prompt=prompt,
        image_url="https://cdn.discordapp.com/attachments/1/2/first.png",
        last_frame_url=None,
        resolution=resolution,
        duration=duration,
    )


async def reserve(
    store: Store,
    *,
    guild: int = GUILD,
    member: int = MEMBER,
    cost: int = 1,
    limits: Limits = LIMITS,
    now: datetime = NOW,
    period: Period = Period.DAY,
    resolution: str = "480p",
    duration: int = 5,
) -> JobRecord:
    return await reserve_job(
        store,
        new_job(guild=guild, member=member, resolution=resolution, duration=duration),
        cost=cost,
        limits=limits,
        window=period_window(period, now),
        now=now,
    )


async def refusal_of(store: Store, **kwargs: Any) -> QuotaExceeded:
    with pytest.raises(QuotaExceeded) as info:
        await reserve(store, **kwargs)
    return info.value


async def ledger(backend: Backend) -> list[tuple[Any, ...]]:
    """(job_id, guild_id, member_id, credits, state, period_key) rows, read past the store."""
    return await backend.rows(
        "SELECT job_id, guild_id, member_id, credits, state, period_key "
        "FROM usage_ledger ORDER BY id"
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A SQLite file, for the tests of SQLite's own machinery."""
    return tmp_path / "data" / "bot.db"


# -- migrations ---------------------------------------------------------------------------


def test_migration_files_are_numbered_from_one() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "initial"


async def test_fresh_database_reaches_latest_version_in_wal_mode(db_path: Path) -> None:
    async with open_store(db_path) as store:
        assert await store.schema_version() == LATEST_VERSION
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (LATEST_VERSION,)
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    raw.close()
    assert {"jobs", "usage_ledger"} <= tables


async def test_reopening_keeps_data_and_applies_nothing_twice(backend: Backend) -> None:
    async with backend.open() as store:
        job = await reserve(store, cost=3)
    for _ in range(2):
        async with backend.open() as store:
            assert await store.schema_version() == backend.latest_version
            assert await store.get_job(job.id) == job
            usage = await usage_in(store, GUILD, MEMBER, limits=LIMITS, window=TODAY)
            assert usage.member_reserved == 3


async def test_two_processes_starting_on_one_fresh_database_both_open_it(
    backend: Backend,
) -> None:
    async def open_and_read() -> int:
        async with backend.open() as store:
            return await store.schema_version()

    assert list(await asyncio.gather(open_and_read(), open_and_read())) == [
        backend.latest_version,
        backend.latest_version,
    ]


async def test_sqlite_database_from_a_newer_bot_is_refused(db_path: Path) -> None:
    async with open_store(db_path):
        pass
    with sqlite3.connect(db_path) as raw:
        raw.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    raw.close()
    with pytest.raises(RuntimeError, match="newer"):
        async with open_store(db_path):
            pass


async def test_meta_values_survive_a_restart(backend: Backend) -> None:
    async with backend.open() as store:
        assert await store.get_meta("command_sync") is None
        await store.set_meta("command_sync", "abc")
        await store.set_meta("command_sync", "def")
    async with backend.open() as store:
        assert await store.get_meta("command_sync") == "def"


def test_split_statements_respects_strings_comments_and_triggers() -> None:
    script = textwrap.dedent(
        """\
        -- a comment; with a semicolon
        CREATE TABLE t (a TEXT DEFAULT 'x;y'); CREATE TABLE u (b);
        CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN
            INSERT INTO u VALUES (1);
            INSERT INTO u VALUES (2);
        END;
        -- trailing comment
        """
    )
    statements = split_statements(script)
    assert len(statements) == 4
    raw = sqlite3.connect(":memory:")
    for statement in statements:
        raw.execute(statement)
    raw.execute("INSERT INTO t DEFAULT VALUES")
    assert raw.execute("SELECT a FROM t").fetchall() == [("x;y",)]
    assert raw.execute("SELECT b FROM u ORDER BY b").fetchall() == [(1,), (2,)]
    raw.close()


# -- job life cycle -----------------------------------------------------------------------


async def test_reserve_then_deliver_commits_the_charge(store: Store, backend: Backend) -> None:
    job = await reserve(store, cost=4, resolution="720p", duration=10)
    assert job.state is JobState.ACCEPTED
    assert (job.credits, job.period_key, job.created_at) == (4, "2026-11-20", NOW)
    assert job.request_id is None
    assert job.submitted_at is None

    t = NOW
    assert await store.mark_submitting(job.id, t + timedelta(seconds=1))
    queued = await store.set_submission(
        job.id,
        request_id="req-1",
        status_url="https://api.example/status",
        result_url="https://api.example/result",
        cancel_url="https://api.example/cancel",
        now=t + timedelta(seconds=2),
    )
    assert queued.state is JobState.QUEUED
    assert queued.submitted_at == t + timedelta(seconds=2)
    # Each change comes back as stored: what the status message shows next.
    waiting = await store.set_progress(
        job.id, JobState.QUEUED, queue_position=3, now=t + timedelta(seconds=5)
    )
    assert waiting is not None
    assert (waiting.state, waiting.queue_position) == (JobState.QUEUED, 3)
    running = await store.set_progress(
        job.id, JobState.RUNNING, queue_position=None, now=t + timedelta(seconds=30)
    )
    assert running is not None
    assert (running.state, running.queue_position) == (JobState.RUNNING, None)
    assert running.started_at == t + timedelta(seconds=30)
    assert await store.set_progress(
        job.id, JobState.RUNNING, queue_position=None, now=t + timedelta(seconds=40)
    )
    await store.set_status_message(job.id, 555)
    await store.set_video_url(job.id, "https://cdn.example/out.mp4")
    assert await store.set_progress(
        job.id, JobState.DELIVERING, queue_position=None, now=t + timedelta(seconds=90)
    )
    assert await store.finish_delivered(
        job.id, result_message_id=777, now=t + timedelta(seconds=100)
    )

    done = await store.get_job(job.id)
    assert done is not None
    assert done.state is JobState.DELIVERED
    assert done.state.is_terminal
    assert done.request_id == "req-1"
    assert done.cancel_url == "https://api.example/cancel"
    assert done.status_message_id == 555
    assert done.result_message_id == 777
    assert done.video_url == "https://cdn.example/out.mp4"
    assert done.started_at == t + timedelta(seconds=30)
    assert done.finished_at == t + timedelta(seconds=100)
    assert done.finished_at.tzinfo is not None
    assert done.queue_position is None
    assert done.request_id == "req-1"

    usage = await usage_in(store, GUILD, MEMBER, limits=LIMITS, window=TODAY)
    assert (usage.member_used, usage.member_reserved, usage.member_left) == (4, 0, 6)
    assert (usage.server_used, usage.server_reserved, usage.server_left) == (4, 0, 96)
    assert usage.member_active_jobs == 0
    assert await ledger(backend) == [(job.id, GUILD, MEMBER, 4, "committed", "2026-11-20")]
    assert await unfinished_jobs(store) == []


@pytest.mark.parametrize("state", sorted(FAILURE_STATES))
async def test_any_failure_releases_the_reservation(
    store: Store, backend: Backend, state: JobState
) -> None:
    job = await reserve(store, cost=5)
    assert await store.mark_submitting(job.id, NOW)
    await store.set_submission(
        job.id, request_id="r", status_url="s", result_url="r", cancel_url="c", now=NOW
    )
    assert await store.finish_failed(job.id, state, error="provider said no", now=NOW)

    done = await store.get_job(job.id)
    assert done is not None
    assert done.state is state
    assert done.error == "provider said no"
    assert done.finished_at == NOW
    usage = await usage_in(store, GUILD, MEMBER, limits=LIMITS, window=TODAY)
    assert (usage.member_used, usage.member_reserved, usage.member_left) == (0, 0, 10)
    assert (await ledger(backend))[0][4] == "released"
    # Released credits can be spent again at once.
    await reserve(store, cost=10)


async def test_delivered_twice_charges_once(store: Store, backend: Backend) -> None:
    job = await reserve(store, cost=2)
    assert await store.finish_delivered(job.id, result_message_id=1, now=NOW)
    assert not await store.finish_delivered(job.id, result_message_id=2, now=NOW)
    done = await store.get_job(job.id)
    assert done is not None
    assert done.result_message_id == 1
    usage = await usage_in(store, GUILD, MEMBER, limits=LIMITS, window=TODAY)
    assert (usage.member_used, usage.member_reserved) == (2, 0)
    assert [row[3:5] for row in await ledger(backend)] == [(2, "committed")]


async def test_failure_after_delivery_changes_nothing(store: Store) -> None:
    job = await reserve(store, cost=2)
    assert await store.finish_delivered(job.id, result_message_id=1, now=NOW)
    for state in FAILURE_STATES:
        assert not await store.finish_failed(job.id, state, error="late", now=NOW)
    assert await store.set_progress(job.id, JobState.RUNNING, queue_position=None, now=NOW) is None
    assert not await store.mark_unknown_submission(job.id, error="late", now=NOW)
    done = await store.get_job(job.id)
    assert done is not None
    assert (done.state, done.error) == (JobState.DELIVERED, None)
    usage = await usage_in(store, GUILD, MEMBER, limits=LIMITS, window=TODAY)
    assert usage.member_used == 2


async def test_delivery_after_cancel_changes_nothing(store: Store) -> None:
    job = await reserve(store, cost=2)
    assert await store.finish_failed(job.id, JobState.CANCELLED, error="by member", now=NOW)
    assert not await store.finish_delivered(job.id, result_message_id=1, now=NOW)
    done = await store.get_job(job.id)
    assert done is not None
    assert done.state is JobState.CANCELLED
    usage = await usage_in(store, GUILD, MEMBER, limits=LIMITS, window=TODAY)
    assert (usage.member_used, usage.member_reserved) == (0, 0)


async def test_job_cancelled_before_submission_is_not_submitted(store: Store) -> None:
    job = await reserve(store)
    assert await store.finish_failed(job.id, JobState.CANCELLED, error="by member", now=NOW)
    assert not await store.mark_submitting(job.id, NOW)
    again = await store.get_job(job.id)
    assert again is not None
    assert again.state is JobState.CANCELLED


async def test_submitting_twice_is_refused(store: Store) -> None:
    job = await reserve(store)
    assert await store.mark_submitting(job.id, NOW)
    assert not await store.mark_submitting(job.id, NOW)


async def test_unknown_submission_holds_credits_until_resolved(store: Store) -> None:
    job = await reserve(store, cost=3)
    assert await store.mark_submitting(job.id, NOW)
    assert await store.mark_unknown_submission(job.id, error="connection reset", now=NOW)
    unknown = await store.get_job(job.id)
    assert unknown is not None
    assert unknown.state is JobState.UNKNOWN_SUBMISSION
    assert not unknown.state.is_terminal
    assert await unfinished_jobs(store) == [unknown]
    usage = await usage_in(store, GUILD, MEMBER, limits=LIMITS, window=TODAY)
    assert (usage.member_reserved, usage.member_active_jobs) == (3, 1)

    assert await store.finish_failed(
        job.id, JobState.TIMED_OUT, error="never found at the provider", now=NOW
    )
    usage = await usage_in(store, GUILD, MEMBER, limits=LIMITS, window=TODAY)
    assert (usage.member_used, usage.member_reserved, usage.member_active_jobs) == (0, 0, 0)


async def test_unknown_submission_found_later_is_queued(store: Store) -> None:
    job = await reserve(store)
    assert await store.mark_submitting(job.id, NOW)
    assert await store.mark_unknown_submission(job.id, error="timeout", now=NOW)
    found = await store.set_submission(
        job.id, request_id="late", status_url="s", result_url="r", cancel_url="c", now=NOW
    )
    assert found.state is JobState.QUEUED


async def test_submission_landing_after_cancel_keeps_ids_not_state(store: Store) -> None:
    job = await reserve(store)
    assert await store.mark_submitting(job.id, NOW)
    assert await store.finish_failed(job.id, JobState.TIMED_OUT, error="deadline", now=NOW)
    late = await store.set_submission(
        job.id, request_id="req-9", status_url="s", result_url="r", cancel_url="c", now=NOW
    )
    assert late.state is JobState.TIMED_OUT
    assert late.request_id == "req-9"


async def test_every_open_state_counts_and_resumes(store: Store) -> None:
    limits = Limits(
        member_credits=100, server_credits=100, member_concurrent=20, server_concurrent=20
    )
    jobs = [await reserve(store, limits=limits) for _ in range(10)]
    ids = [job.id for job in jobs]
    # accepted: ids[0]
    await store.mark_submitting(ids[1], NOW)
    for job_id in ids[2:]:
        await store.mark_submitting(job_id, NOW)
        await store.set_submission(
            job_id, request_id=f"r{job_id}", status_url="s", result_url="r", cancel_url="c", now=NOW
        )
    await store.set_progress(ids[3], JobState.RUNNING, queue_position=None, now=NOW)
    await store.set_progress(ids[4], JobState.DELIVERING, queue_position=None, now=NOW)
    await store.mark_unknown_submission(ids[5], error="?", now=NOW)
    await store.finish_delivered(ids[6], result_message_id=None, now=NOW)
    await store.finish_failed(ids[7], JobState.FAILED, error="x", now=NOW)
    await store.finish_failed(ids[8], JobState.CANCELLED, error="x", now=NOW)
    await store.finish_failed(ids[9], JobState.TIMED_OUT, error="x", now=NOW)

    unfinished = await unfinished_jobs(store)
    assert [job.id for job in unfinished] == ids[:6]
    assert [job.state for job in unfinished] == [
        JobState.ACCEPTED,
        JobState.SUBMITTING,
        JobState.QUEUED,
        JobState.RUNNING,
        JobState.DELIVERING,
        JobState.UNKNOWN_SUBMISSION,
    ]
    usage = await usage_in(store, GUILD, MEMBER, limits=limits, window=TODAY)
    assert (usage.member_active_jobs, usage.server_active_jobs) == (6, 6)
    assert (usage.member_used, usage.member_reserved) == (1, 6)
    assert {state for state in JobState if state.is_terminal} == {
        JobState.DELIVERED,
        JobState.FAILED,
        JobState.CANCELLED,
        JobState.TIMED_OUT,
    }


async def test_wrong_states_and_missing_jobs_are_errors(store: Store) -> None:
    job = await reserve(store)
    with pytest.raises(ValueError, match="set_progress"):
        await store.set_progress(job.id, JobState.DELIVERED, queue_position=None, now=NOW)
    for state in (JobState.DELIVERED, JobState.UNKNOWN_SUBMISSION, JobState.RUNNING):
        with pytest.raises(ValueError, match="finish_failed"):
            await store.finish_failed(job.id, state, error="x", now=NOW)
    assert await store.get_job(job.id + 1) is None
    with pytest.raises(JobNotFound):
        await store.finish_delivered(job.id + 1, result_message_id=None, now=NOW)
    with pytest.raises(JobNotFound):
        await store.set_status_message(job.id + 1, 1)
    with pytest.raises(JobNotFound):
        await store.mark_submitting(job.id + 1, NOW)
    with pytest.raises(ValueError, match="aware"):
        await reserve(store, now=datetime(2026, 11, 20, 12))  # noqa: DTZ001
    # None of the refused calls changed the job.
    assert await store.get_job(job.id) == job


async def test_recent_jobs_and_run_times(store: Store) -> None:
    limits = Limits(
        member_credits=100, server_credits=100, member_concurrent=20, server_concurrent=20
    )
    durations = [40, 50, 70]
    for minutes, seconds in enumerate(durations):
        start = NOW + timedelta(minutes=minutes)
        job = await reserve(store, limits=limits, now=start, resolution="720p", duration=5)
        await store.set_submission(
            job.id, request_id="r", status_url="s", result_url="r", cancel_url="c", now=start
        )
        # Queue time (before the job runs) is not part of the run time.
        running = start + timedelta(seconds=25)
        await store.set_progress(job.id, JobState.RUNNING, queue_position=None, now=running)
        await store.finish_delivered(
            job.id, result_message_id=None, now=running + timedelta(seconds=seconds)
        )
    failed = await reserve(store, limits=limits, resolution="720p", duration=5)
    await store.set_submission(
        failed.id, request_id="r", status_url="s", result_url="r", cancel_url="c", now=NOW
    )
    await store.finish_failed(failed.id, JobState.FAILED, error="x", now=NOW + timedelta(hours=1))
    await reserve(store, limits=limits, member=OTHER_MEMBER, resolution="480p")

    assert await store.recent_run_seconds("720p", 5) == [70.0, 50.0, 40.0]
    assert await store.recent_run_seconds("720p", 5, limit=2) == [70.0, 50.0]
    assert await store.recent_run_seconds("720p", 10) == []

    recent = await store.recent_jobs(GUILD, MEMBER, limit=3)
    assert [job.id for job in recent] == [4, 3, 2]
    assert recent[0].state is JobState.FAILED
    assert [job.member_id for job in await store.recent_jobs(GUILD, OTHER_MEMBER)] == [OTHER_MEMBER]
    assert await store.recent_jobs(OTHER_GUILD, MEMBER) == []


async def test_open_jobs_in_a_channel_are_its_unsettled_ones_oldest_first(store: Store) -> None:
    limits = Limits(
        member_credits=100, server_credits=100, member_concurrent=20, server_concurrent=20
    )
    first = await reserve(store, limits=limits)
    settled = await reserve(store, limits=limits)
    await store.finish_failed(settled.id, JobState.FAILED, error="x", now=NOW)
    queued = await reserve(store, limits=limits, member=OTHER_MEMBER)
    await store.set_submission(
        queued.id, request_id="r", status_url="s", result_url="r", cancel_url="c", now=NOW
    )
    elsewhere = await reserve(store, limits=limits, guild=OTHER_GUILD)

    channel = first.channel_id
    assert [job.id for job in await store.open_jobs_in(GUILD, channel)] == [first.id, queued.id]
    # Another server's channel is its own, even under a guessed id.
    assert await store.open_jobs_in(GUILD, elsewhere.channel_id) == []
    assert await store.open_jobs_in(OTHER_GUILD, channel) == []


# -- refusals -----------------------------------------------------------------------------


async def test_member_credit_cap_refuses_with_numbers(store: Store, backend: Backend) -> None:
    first = await reserve(store, cost=4)
    await store.finish_delivered(first.id, result_message_id=None, now=NOW)
    await reserve(store, cost=4)
    refusal = (await refusal_of(store, cost=4)).refusal
    assert refusal.reason == "member_credits"
    assert (refusal.cost, refusal.member_used, refusal.member_limit) == (4, 8, 10)
    assert (refusal.server_used, refusal.server_limit) == (8, 100)
    assert (refusal.active_member, refusal.active_server) == (1, 1)
    assert refusal.member_left == 2
    assert refusal.resets_at == datetime(2026, 11, 21, tzinfo=UTC)
    # The refusal charged nothing and wrote no job; a job that fits still goes through.
    assert len(await ledger(backend)) == 2
    assert len(await store.recent_jobs(GUILD, MEMBER)) == 2
    await reserve(store, cost=2)


async def test_server_pool_refuses_with_numbers(store: Store) -> None:
    limits = Limits(member_credits=10, server_credits=12, member_concurrent=5, server_concurrent=50)
    await reserve(store, cost=7, limits=limits)
    await reserve(store, cost=4, limits=limits, member=OTHER_MEMBER)
    await reserve(store, cost=9, guild=OTHER_GUILD, member=MEMBER + 100)
    refusal = (await refusal_of(store, cost=2, limits=limits, member=MEMBER + 2)).refusal
    assert refusal.reason == "server_credits"
    assert (refusal.member_used, refusal.member_limit) == (0, 10)
    assert (refusal.server_used, refusal.server_limit, refusal.server_left) == (11, 12, 1)
    assert (refusal.active_member, refusal.active_server) == (0, 2)
    await reserve(store, cost=1, limits=limits, member=MEMBER + 2)


async def test_member_concurrency_cap(store: Store) -> None:
    limits = Limits(
        member_credits=10, server_credits=100, member_concurrent=1, server_concurrent=50
    )
    running = await reserve(store, limits=limits)
    refusal = (await refusal_of(store, limits=limits)).refusal
    assert refusal.reason == "member_concurrent"
    assert (refusal.active_member, refusal.active_server, refusal.member_used) == (1, 1, 1)
    await reserve(store, limits=limits, member=OTHER_MEMBER)
    await store.finish_delivered(running.id, result_message_id=None, now=NOW)
    await reserve(store, limits=limits)


async def test_server_concurrency_cap(store: Store) -> None:
    limits = Limits(member_credits=10, server_credits=100, member_concurrent=5, server_concurrent=2)
    await reserve(store, limits=limits, member=1)
    second = await reserve(store, limits=limits, member=2)
    refusal = (await refusal_of(store, limits=limits, member=3)).refusal
    assert refusal.reason == "server_concurrent"
    assert (refusal.active_member, refusal.active_server) == (0, 2)
    await reserve(store, limits=limits, guild=OTHER_GUILD, member=3)
    await store.finish_failed(second.id, JobState.FAILED, error="x", now=NOW)
    await reserve(store, limits=limits, member=3)


async def test_credit_refusal_comes_before_concurrency(store: Store) -> None:
    limits = Limits(member_credits=1, server_credits=100, member_concurrent=1, server_concurrent=50)
    await reserve(store, limits=limits)
    assert (await refusal_of(store, limits=limits)).refusal.reason == "member_credits"


async def test_zero_budget_refuses_everything(store: Store) -> None:
    # A server always lets a member run one job at a time; zero credits still refuse.
    limits = Limits(member_credits=0, server_credits=0, member_concurrent=1, server_concurrent=1)
    assert (await refusal_of(store, limits=limits)).refusal.reason == "member_credits"


# -- periods ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "before", "after"),
    [
        (
            Period.DAY,
            datetime(2026, 11, 19, 23, 59, 59, tzinfo=UTC),
            datetime(2026, 11, 20, 0, 0, tzinfo=UTC),
        ),
        (
            Period.WEEK,
            datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC),  # Sunday
            datetime(2026, 11, 23, 0, 0, tzinfo=UTC),  # Monday
        ),
        (
            Period.MONTH,
            datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            datetime(2027, 1, 1, tzinfo=UTC),
        ),
        (
            Period.MONTH,
            datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC),
            datetime(2028, 3, 1, tzinfo=UTC),
        ),
    ],
)
async def test_new_period_brings_a_fresh_budget(
    store: Store, period: Period, before: datetime, after: datetime
) -> None:
    old: PeriodWindow = period_window(period, before)
    new: PeriodWindow = period_window(period, after)
    assert old.key != new.key
    first = await reserve(store, cost=6, period=period, now=before)
    await store.finish_delivered(first.id, result_message_id=None, now=before)
    refusal = (await refusal_of(store, cost=6, period=period, now=before)).refusal
    assert refusal.resets_at == new.start == after

    job = await reserve(store, cost=6, period=period, now=after)
    assert job.period_key == new.key
    now_usage = await usage_in(store, GUILD, MEMBER, limits=LIMITS, window=new)
    assert (now_usage.member_used, now_usage.member_reserved, now_usage.member_left) == (0, 6, 4)
    assert now_usage.resets_at == new.end
    old_usage = await usage_in(store, GUILD, MEMBER, limits=LIMITS, window=old)
    assert (old_usage.member_used, old_usage.member_reserved) == (6, 0)


async def test_open_job_from_yesterday_still_counts_for_concurrency(store: Store) -> None:
    limits = Limits(
        member_credits=10, server_credits=100, member_concurrent=1, server_concurrent=50
    )
    await reserve(store, limits=limits, now=NOW - timedelta(days=1))
    refusal = (await refusal_of(store, limits=limits)).refusal
    assert refusal.reason == "member_concurrent"
    assert refusal.member_used == 0


async def test_usage_counts_member_server_and_nothing_else(store: Store) -> None:
    delivered = await reserve(store, cost=2)
    await store.finish_delivered(delivered.id, result_message_id=None, now=NOW)
    await reserve(store, cost=4)
    released = await reserve(store, cost=1)
    await store.finish_failed(released.id, JobState.FAILED, error="x", now=NOW)
    await reserve(store, cost=3, member=OTHER_MEMBER)
    await reserve(store, cost=5, guild=OTHER_GUILD)
    await reserve(store, cost=1, now=NOW - timedelta(days=1))

    usage = await usage_in(store, GUILD, MEMBER, limits=LIMITS, window=TODAY)
    assert usage.period_key == "2026-11-20"
    assert usage.resets_at == datetime(2026, 11, 21, tzinfo=UTC)
    assert (usage.member_used, usage.member_reserved, usage.member_limit) == (2, 4, 10)
    assert usage.member_left == 4
    assert (usage.server_used, usage.server_reserved, usage.server_limit) == (2, 7, 100)
    assert usage.server_left == 91
    # Open jobs count whatever period they were charged to.
    assert (usage.member_active_jobs, usage.server_active_jobs) == (2, 3)

    empty = await usage_in(store, OTHER_GUILD + 1, MEMBER, limits=LIMITS, window=TODAY)
    assert (empty.member_used, empty.server_reserved, empty.member_left) == (0, 0, 10)


async def test_left_never_goes_negative_when_limits_shrink(store: Store) -> None:
    await reserve(store, cost=8)
    smaller = Limits(member_credits=5, server_credits=5, member_concurrent=1, server_concurrent=1)
    usage = await usage_in(store, GUILD, MEMBER, limits=smaller, window=TODAY)
    assert (usage.member_left, usage.server_left) == (0, 0)


# -- races --------------------------------------------------------------------------------


async def race(stores: list[Store], attempts: int, cost: int, limits: Limits) -> int:
    """Fire ``attempts`` reservations per store at once, each by a different member."""

    async def attempt(store: Store, member: int) -> bool:
        try:
            await reserve(store, member=member, cost=cost, limits=limits)
        except QuotaExceeded as refused:
            assert refused.refusal.reason == "server_credits"
            return False
        return True

    results = await asyncio.gather(
        *(
            attempt(store, member=index * attempts + n)
            for index, store in enumerate(stores)
            for n in range(attempts)
        )
    )
    return sum(results)


async def assert_budget_held(backend: Backend, budget: int, cost: int) -> None:
    rows = await ledger(backend)
    assert len(rows) == budget // cost
    assert sum(row[3] for row in rows) <= budget
    [(jobs,)] = await backend.rows("SELECT COUNT(*) FROM jobs")
    assert jobs == len(rows)


async def test_200_concurrent_reservations_never_overspend(store: Store, backend: Backend) -> None:
    limits = Limits(
        member_credits=10, server_credits=20, member_concurrent=5, server_concurrent=500
    )
    assert await race([store], 200, cost=3, limits=limits) == 6
    await assert_budget_held(backend, budget=20, cost=3)
    usage = await usage_in(store, GUILD, MEMBER, limits=limits, window=TODAY)
    assert (usage.server_reserved, usage.server_left, usage.server_active_jobs) == (18, 2, 6)


async def test_concurrent_reservations_of_one_member_respect_its_cap(store: Store) -> None:
    limits = Limits(
        member_credits=100, server_credits=100, member_concurrent=3, server_concurrent=50
    )

    async def attempt() -> str | None:
        try:
            await reserve(store, limits=limits)
        except QuotaExceeded as refused:
            return refused.refusal.reason
        return None

    outcomes = await asyncio.gather(*(attempt() for _ in range(200)))
    assert outcomes.count(None) == 3
    assert set(outcomes) == {None, "member_concurrent"}


async def test_two_stores_on_one_database_never_overspend(backend: Backend) -> None:
    limits = Limits(
        member_credits=10, server_credits=100, member_concurrent=5, server_concurrent=500
    )
    async with backend.open() as first, backend.open() as second:
        assert await race([first, second], 100, cost=3, limits=limits) == 33
        await assert_budget_held(backend, budget=100, cost=3)
        usage = await usage_in(second, GUILD, MEMBER, limits=limits, window=TODAY)
        assert usage.server_reserved == 99


CHILD = """
import asyncio, sys
from datetime import UTC, datetime
from bot.quota import Limits, Period, period_window
from bot.models import NewJob
from bot.errors import QuotaExceeded
from tests.harness.backends import open_address
from tests.harness.store_calls import reserve_job

async def main(address: str, name: int) -> None:
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    limits = Limits(member_credits=10, server_credits=150, member_concurrent=5,
                    server_concurrent=1000)
    async with open_address(address) as store:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)

        async def attempt(member: int) -> bool:
            job = NewJob(1000, 1001, member, "p", "https://x/a.png", None, "480p", 5)
            try:
                await reserve_job(store, job, cost=1, limits=limits,
                                  window=period_window(Period.DAY, now), now=now)
            except QuotaExceeded:
                return False
            return True

        results = await asyncio.gather(*(attempt(name * 1000 + n) for n in range(120)))
        print(sum(results), flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def test_two_processes_on_one_database_never_overspend(backend: Backend) -> None:
    async with backend.open():
        pass  # create the schema first, so both children only race on reservations
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            backend.address,
            str(name),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=REPO,
        )
        for name in (1, 2)
    ]
    for child in children:
        assert child.stdout is not None
        assert await child.stdout.readline() == b"ready\n"
    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        await child.stdin.drain()
    outputs = [await child.communicate() for child in children]
    assert [child.returncode for child in children] == [0, 0]
    assert sum(int(out.strip()) for out, _ in outputs) == 150
    await assert_budget_held(backend, budget=150, cost=1)


async def test_cancelled_reservations_leave_the_store_consistent(
    store: Store, backend: Backend
) -> None:
    limits = Limits(
        member_credits=10, server_credits=1000, member_concurrent=5, server_concurrent=500
    )
    tasks = [
        asyncio.create_task(reserve(store, member=n, limits=limits, cost=2)) for n in range(60)
    ]
    for _ in range(5):
        await asyncio.sleep(0)
    for task in tasks[::2]:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    kept = [r for r in results if isinstance(r, JobRecord)]
    assert all(isinstance(r, JobRecord | asyncio.CancelledError) for r in results)
    # A cancelled call may or may not have committed, but never half: every job has exactly
    # its ledger row, and the store keeps working.
    rows = await ledger(backend)
    job_ids = [r[0] for r in await backend.rows("SELECT id FROM jobs ORDER BY id")]
    assert [row[0] for row in rows] == job_ids
    assert {job.id for job in kept} <= set(job_ids)
    after = await reserve(store, member=999, limits=limits, cost=2)
    assert after.state is JobState.ACCEPTED
    usage = await usage_in(store, GUILD, 999, limits=limits, window=TODAY)
    assert usage.server_reserved == 2 * (len(job_ids) + 1)


async def test_an_ending_not_yet_shown_is_listed_until_marked_shown(store: Store) -> None:
    shown, unshown, open_job, silent = [await reserve(store, member=m) for m in (1, 2, 3, 4)]
    for job in (shown, unshown, open_job):
        await store.set_status_message(job.id, 100 + job.id, now=NOW)
    for job in (shown, unshown, silent):  # silent never had a status message to show it on
        await store.finish_failed(job.id, JobState.FAILED, error="x", now=NOW)
    await store.mark_final_shown(shown.id, now=NOW)
    await store.mark_final_shown(open_job.id, now=NOW)  # open: nothing to mark yet
    listed = await store.unshown_endings(NOW - timedelta(hours=1))
    assert [job.id for job in listed] == [unshown.id]
    assert await store.unshown_endings(NOW + timedelta(seconds=1)) == []  # too old to show
    await store.finish_delivered(open_job.id, result_message_id=9, now=NOW)
    listed = await store.unshown_endings(NOW - timedelta(hours=1))
    assert {job.id for job in listed} == {unshown.id, open_job.id}
