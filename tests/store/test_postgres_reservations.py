"""The PostgreSQL reservation's own mechanics: a transaction opened together with the server's
lock, connections handed back to the pool without asyncpg's reset query, and writes that hold
the pool exactly whatever isolation level the database defaults to."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

from bot.errors import GateClosed, QuotaExceeded
from bot.models import GuildDefaults, NewJob
from bot.quota import Period
from bot.store.postgres import PostgresStore
from tests.harness.backends import PostgresBackend

pytestmark = pytest.mark.store_backends("postgres")

GUILD = 3000
MOD = 99
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DEFAULTS = GuildDefaults(
    period=Period.DAY, server_credits=1000, member_credits=3, member_concurrent=1000,
    server_concurrent=1000,
)  # fmt: skip


def request(member: int, *, duration: int = 5) -> NewJob:
    return NewJob(
        GUILD, GUILD + 1, member, "a cat", "https://cdn.test/a.png", None, "480p", duration
    )


async def ask(store: PostgresStore, member: int, *, cost: int = 1, duration: int = 5) -> str:
    """What the member is told: the job's state, or why it was refused."""
    try:
        record = await store.reserve_request(
            request(member, duration=duration),
            cost=cost,
            role_ids=(),
            defaults=DEFAULTS,
            now=NOW,
        )
    except QuotaExceeded as refused:
        return refused.refusal.reason
    except GateClosed as closed:
        return closed.reason
    return record.state.value


async def connections(backend: PostgresBackend) -> list[tuple[str, int]]:
    """The store's connections to the test's database: (state, advisory locks held)."""
    rows = await backend.rows(
        "SELECT a.state, (SELECT COUNT(*) FROM pg_locks l WHERE l.pid = a.pid "
        "AND l.locktype = 'advisory') FROM pg_stat_activity a "
        f"WHERE a.application_name = 'seedance-bot' AND a.datname = '{backend.database}'"
    )
    return [(str(state), int(locks)) for state, locks in rows]


async def jobs(backend: PostgresBackend) -> int:
    [(count,)] = await backend.rows("SELECT COUNT(*) FROM jobs")
    return int(count)


async def test_every_outcome_hands_its_connection_back_idle_and_unlocked(
    backend: PostgresBackend,
) -> None:
    # One connection, so every call below reuses the connection the one before handed back.
    async with PostgresStore.open(backend.url, max_size=1) as store:
        assert await ask(store, 11) == "accepted"
        await store.set_approvals(GUILD, True, by=MOD)
        assert await ask(store, 11, cost=5) == "pending_approval"
        await store.set_approvals(GUILD, False, by=MOD)
        assert await ask(store, 11, cost=5) == "member_credits"
        await store.ban_member(GUILD, 12, by=MOD)
        assert await ask(store, 12) == "banned"
        # The database refuses the write itself (a job lasts at least a second): the error
        # reaches the caller and the transaction is rolled back, nothing half-written.
        with pytest.raises(asyncpg.CheckViolationError):
            await ask(store, 13, duration=0)
        assert await connections(backend) == [("idle", 0)]
        assert await jobs(backend) == 2
        # The server's lock was let go every time: another process reserves at once.
        async with PostgresStore.open(backend.url) as other:
            assert await ask(other, 14) == "accepted"
        assert await ask(store, 13) == "accepted"
    [(held,)] = await backend.rows("SELECT SUM(credits) FROM usage_ledger")
    assert held == 1 + 5 + 1 + 1


async def test_a_reservation_cancelled_while_waiting_for_the_lock_writes_nothing(
    backend: PostgresBackend,
) -> None:
    holder = await asyncpg.connect(backend.url)
    try:
        async with PostgresStore.open(backend.url, max_size=1) as store:
            # Another process is deciding for this server and holds its lock.
            await holder.execute("BEGIN")
            await holder.execute("SELECT pg_advisory_xact_lock($1::bigint)", GUILD)
            waiting = asyncio.create_task(ask(store, 11))
            while not await backend.rows(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = 'seedance-bot' "
                "AND wait_event_type = 'Lock'"
            ):
                assert not waiting.done()
                await asyncio.sleep(0.01)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await holder.execute("ROLLBACK")
            assert await jobs(backend) == 0
            # The store carries on, on the same connection or on a new one.
            assert await ask(store, 11) == "accepted"
            assert await connections(backend) == [("idle", 0)]
    finally:
        await holder.close()
    assert await jobs(backend) == 1


async def test_the_pool_holds_exactly_when_the_database_defaults_to_repeatable_read(
    backend: PostgresBackend,
) -> None:
    # An operator's default isolation must not change what a reservation sees once it holds
    # the server's lock: at REPEATABLE READ the snapshot would predate the lock.
    await backend.rows(
        f'ALTER DATABASE "{backend.database}" '
        "SET default_transaction_isolation = 'repeatable read'"
    )
    assert await backend.rows("SHOW default_transaction_isolation") == [("repeatable read",)]
    async with PostgresStore.open(backend.url) as admin:
        await admin.set_guild_budget(GUILD, by=MOD, server_credits=20)
    async with (
        PostgresStore.open(backend.url, max_size=4) as a,
        PostgresStore.open(backend.url, max_size=4) as b,
        PostgresStore.open(backend.url, max_size=4) as c,
    ):
        outcomes = await asyncio.gather(
            *(ask(store, 100 + n) for n, store in enumerate((a, b, c) * 20))
        )
    assert outcomes.count("accepted") == 20
    assert set(outcomes) == {"accepted", "server_credits"}
    [(total,)] = await backend.rows("SELECT SUM(credits) FROM usage_ledger")
    assert total == 20
