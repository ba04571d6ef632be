"""SQLite's group commit keeps each call's transaction its own.

Calls made together go in one batch (one transaction, one commit); these tests hold the store
to what each caller was promised: its write alone rolled back when it fails, nothing kept
and every writer told when the commit fails, reads seeing the writes asked for before them,
and the order of calls kept when a batch runs out of time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.models import GuildDefaults, JobRecord, JobState, NewJob
from bot.store.sqlite import batches
from bot.store.sqlite.inline import Db
from bot.store.sqlite.store import SqliteStore
from tests.harness.store_faults import StatementFaults

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
DEFAULTS = GuildDefaults(
    server_credits=10_000, member_credits=10_000, member_concurrent=100, server_concurrent=100
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore.open(tmp_path / "bot.db") as opened:
        yield opened


async def jobs(store: SqliteStore, count: int) -> list[JobRecord]:
    request = NewJob(
        guild_id=1,
        channel_id=2,
        member_id=3,
        prompt="a kite over the dunes",
        image_url="https://cdn.discordapp.com/attachments/1/2/first.png",
        last_frame_url=None,
        resolution="480p",
        duration=5,
    )
    return [
        await store.reserve_request(request, cost=1, role_ids=(), defaults=DEFAULTS, now=NOW)
        for _ in range(count)
    ]


async def test_a_write_failing_midway_is_rolled_back_alone(store: SqliteStore) -> None:
    """Three transactions in one batch, the second raising after its insert: it keeps
    nothing and its caller gets the error; the others commit."""

    def insert(key: str, *, fail: bool = False) -> Callable[[Db], Awaitable[None]]:
        async def body(db: Db) -> None:
            await db.execute(
                "INSERT INTO meta (key, value, updated_at) VALUES (?, 'v', 'now')", (key,)
            )
            if fail:
                raise ValueError("refused after the insert")

        return body

    outcomes = await asyncio.gather(
        store._batches.write(insert("one")),
        store._batches.write(insert("two", fail=True)),
        store._batches.write(insert("three")),
        return_exceptions=True,
    )
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], ValueError)
    assert [await store.get_meta(k) for k in ("one", "two", "three")] == ["v", None, "v"]


async def test_a_statement_sqlite_interrupts_ends_the_whole_batch(store: SqliteStore) -> None:
    """SQLite rolls back the whole transaction of an interrupted write (as of a full disk):
    every settlement of the batch is told, none is kept, and the next batch goes on."""
    made = await jobs(store, 5)
    faults = await StatementFaults.install(store)
    faults.fail(r"UPDATE usage_ledger SET state = 'committed'")
    outcomes = await asyncio.gather(
        *(store.finish_delivered(job.id, result_message_id=1, now=NOW) for job in made),
        return_exceptions=True,
    )
    assert len(faults.failed) == 1
    assert all(isinstance(o, Exception) for o in outcomes), outcomes
    for job in made:
        stored = await store.get_job(job.id)
        assert stored is not None and stored.state is JobState.ACCEPTED
    assert all(
        await asyncio.gather(
            *(store.finish_delivered(job.id, result_message_id=1, now=NOW) for job in made)
        )
    )
    usage = await store.member_usage(1, 3, role_ids=(), defaults=DEFAULTS, now=NOW)
    assert (usage.member_used, usage.member_reserved) == (5, 0)


async def test_a_failed_commit_keeps_nothing_and_tells_every_writer(store: SqliteStore) -> None:
    made = await jobs(store, 4)
    faults = await StatementFaults.install(store)
    faults.fail(r"^COMMIT")
    outcomes = await asyncio.gather(
        *(store.set_status_message(job.id, 7, now=NOW) for job in made), return_exceptions=True
    )
    assert faults.failed
    assert all(isinstance(o, Exception) for o in outcomes), outcomes
    for job in made:
        stored = await store.get_job(job.id)
        assert stored is not None and stored.status_message_id is None
    # The store goes on: the next writes commit.
    await asyncio.gather(*(store.set_status_message(job.id, 8, now=NOW) for job in made))
    assert {(await store.get_job(job.id)).status_message_id for job in made} == {8}  # type: ignore[union-attr]


async def test_a_read_sees_the_writes_asked_for_before_it(store: SqliteStore) -> None:
    [job] = await jobs(store, 1)
    for value in range(1, 30):
        write = asyncio.ensure_future(store.set_status_message(job.id, value, now=NOW))
        seen = await store.get_job(job.id)  # asked for after the write, before it finished
        assert seen is not None and seen.status_message_id == value
        await write


async def test_a_batch_out_of_time_keeps_the_order_of_calls(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no time to spare for writes, every batch runs one: the writes not run and the
    reads asked for after them wait, so every read still sees the writes asked for before
    it."""
    [job] = await jobs(store, 1)
    monkeypatch.setattr(batches, "STALL_SECONDS", 0.0)
    calls = []
    for value in range(1, 21):
        calls.append(store.set_status_message(job.id, value, now=NOW))
        calls += [store.get_job(job.id) for _ in range(3)]
    outcomes = await asyncio.gather(*calls)
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, JobRecord):
            written_before = index // 4 + 1
            assert outcome.status_message_id is not None
            assert outcome.status_message_id >= written_before, index


async def test_a_stopped_batch_leaves_no_caller_waiting(store: SqliteStore) -> None:
    """The loop closing stops the batches mid-commit: every caller is answered (cancelled),
    none is left waiting for ever."""
    made = await jobs(store, 8)
    calls = [asyncio.ensure_future(store.set_status_message(job.id, 5, now=NOW)) for job in made]
    for _ in range(3):  # the calls queue, the batch is taken, its commit goes to the thread
        await asyncio.sleep(0)
    assert store._batches._pending == []
    runner = store._batches._runner
    assert runner is not None
    runner.cancel()
    async with asyncio.timeout(5):
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert all(o is None or isinstance(o, asyncio.CancelledError) for o in outcomes)
    # The store goes on afterwards.
    await store.set_status_message(made[0].id, 6, now=NOW)
    assert (await store.get_job(made[0].id)).status_message_id == 6  # type: ignore[union-attr]
