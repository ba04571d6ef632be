"""What only the PostgreSQL store has: its schema and migrations, its start-up errors, and money
held exactly by several connection pools (processes) at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from bot.errors import QuotaExceeded
from bot.models import GuildDefaults, JobState, NewJob
from bot.quota import Period
from bot.store.postgres import PostgresStore
from bot.store.postgres.connect import DatabaseUnavailable
from bot.store.postgres.schema import Migration, apply_migrations, load_migrations
from tests.harness.backends import PostgresBackend
from tests.harness.postgres import PostgresServer

pytestmark = pytest.mark.store_backends("postgres")

GUILD = 1000
MOD = 99
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DEFAULTS = GuildDefaults(
    period=Period.DAY, server_credits=1000, member_credits=1000, member_concurrent=1000,
    server_concurrent=1000,
)  # fmt: skip


async def ask(store: PostgresStore, member: int, *, cost: int = 1) -> JobState | str:
    job = NewJob(GUILD, GUILD + 1, member, "a cat", "https://cdn.test/a.png", None, "480p", 5)
    try:
        record = await store.reserve_request(
            job, cost=cost, role_ids=(), defaults=DEFAULTS, now=NOW
        )
    except QuotaExceeded as refused:
        return refused.refusal.reason
    return record.state


# -- schema -------------------------------------------------------------------------------


def test_migration_files_are_numbered_from_one() -> None:
    migrations = load_migrations("bot.store.postgres")
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "initial"


async def test_ids_are_bigint_and_times_timestamptz(backend: PostgresBackend) -> None:
    async with backend.open() as store:
        assert await store.schema_version() == backend.latest_version
    columns = await backend.rows(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name <> 'schema_migrations'"
    )
    # Every id but the provider's request id: Discord's and the bot's own.
    ids = {
        (t, c): kind
        for t, c, kind in columns
        if (c == "id" or c.endswith("_id")) and c != "request_id"
    }
    times = {(t, c): kind for t, c, kind in columns if c.endswith("_at") or c == "lease_until"}
    assert ("jobs", "guild_id") in ids and ("jobs", "lease_until") in times
    assert set(ids.values()) == {"bigint"}
    assert set(times.values()) == {"timestamp with time zone"}


async def test_discord_sized_ids_come_back_whole(backend: PostgresBackend) -> None:
    guild, member, channel = 1_300_000_000_000_000_001, 987_654_321_987_654_321, 2**63 - 1
    job = NewJob(guild, channel, member, "p", "https://cdn.test/a.png", None, "480p", 5)
    async with backend.open() as store:
        record = await store.reserve_request(job, cost=1, role_ids=(), defaults=DEFAULTS, now=NOW)
        await store.set_status_message(record.id, channel)
        [again] = await store.recent_jobs(guild, member)
    assert (again.guild_id, again.member_id, again.channel_id) == (guild, member, channel)
    assert again.status_message_id == channel


async def test_a_later_migration_is_applied_once_and_a_gap_is_refused(
    backend: PostgresBackend,
) -> None:
    migrations = load_migrations("bot.store.postgres")
    later = Migration(len(migrations) + 1, "notes", "CREATE TABLE notes (body TEXT NOT NULL);")
    conn = await asyncpg.connect(backend.url)
    try:
        assert await apply_migrations(conn, migrations) == len(migrations)
        for _ in range(2):
            assert await apply_migrations(conn, [*migrations, later]) == later.version
        names = [r[0] for r in await conn.fetch("SELECT name FROM schema_migrations ORDER BY 1")]
        assert sorted(names) == sorted([m.name for m in migrations] + ["notes"])
        gap = Migration(later.version + 2, "gap", "SELECT 1;")
        with pytest.raises(RuntimeError, match="cannot apply"):
            await apply_migrations(conn, [*migrations, later, gap])
    finally:
        await conn.close()


async def test_a_database_from_a_newer_bot_is_refused_and_left_alone(
    backend: PostgresBackend,
) -> None:
    async with backend.open():
        pass
    newer = backend.latest_version + 1
    await backend.rows(f"INSERT INTO schema_migrations (version, name) VALUES ({newer}, 'x')")
    with pytest.raises(DatabaseUnavailable, match=f"version {newer} is newer") as info:
        async with backend.open():
            pass
    assert "\n" not in str(info.value)
    assert await backend.rows("SELECT MAX(version) FROM schema_migrations") == [(newer,)]


async def test_upgrading_counts_endings_settled_before_it_as_shown(
    backend: PostgresBackend,
) -> None:
    """V4 records when a status message showed a job's ending: a database from before it has
    nothing to show again, and a job still open then is shown again once it ends unseen."""
    conn = await asyncpg.connect(backend.url)
    try:
        await apply_migrations(conn, load_migrations("bot.store.postgres")[:3])
        for state, finished in (("delivered", NOW), ("running", None)):
            await conn.execute(
                "INSERT INTO jobs (guild_id, channel_id, member_id, prompt, image_url, "
                "resolution, duration, credits, state, status_message_id, period_key, "
                "created_at, updated_at, finished_at) "
                "VALUES ($1, 5, 6, 'p', 'u', '480p', 5, 1, $2, 77, '2026-11-20', $3, $3, $4)",
                GUILD, state, NOW, finished,
            )  # fmt: skip
    finally:
        await conn.close()
    async with backend.open() as store:
        assert await store.schema_version() == backend.latest_version
        since = NOW - timedelta(days=1)
        assert await store.unshown_endings(since) == []
        [running] = await backend.rows("SELECT id FROM jobs WHERE state = 'running'")
        await store.finish_failed(running[0], JobState.FAILED, error="x", now=NOW)
        assert [job.id for job in await store.unshown_endings(since)] == [running[0]]


# -- start-up errors ----------------------------------------------------------------------


async def test_a_wrong_password_is_named_without_the_password(
    postgres_server: PostgresServer, postgres_database: str
) -> None:
    url = postgres_server.password_url(postgres_database, password="not-the-secret-42")
    with pytest.raises(DatabaseUnavailable) as info:
        async with PostgresStore.open(url):
            pass
    message = str(info.value)
    assert "password authentication failed" in message
    assert "not-the-secret-42" not in message
    assert "***" in message and "\n" not in message
    # The right password opens it.
    right = postgres_server.password_url(postgres_database, password=postgres_server.password)
    async with PostgresStore.open(right) as store:
        assert await store.get_meta("nothing") is None


async def test_an_unreachable_server_is_named_without_the_password() -> None:
    url = "postgresql://bot:hunter2-secret@/seedance?host=/nonexistent/socket/dir"
    with pytest.raises(DatabaseUnavailable) as info:
        async with PostgresStore.open(url):
            pass
    message = str(info.value)
    assert message.startswith("cannot reach PostgreSQL at postgresql://bot:***@/seedance")
    assert "hunter2-secret" not in message and "\n" not in message


async def test_a_missing_database_is_named(postgres_server: PostgresServer) -> None:
    with pytest.raises(DatabaseUnavailable, match='database "no_such_db" does not exist'):
        async with PostgresStore.open(postgres_server.url("no_such_db")):
            pass


# -- money under several processes -------------------------------------------------------


async def test_many_pools_never_pass_a_members_cap(backend: PostgresBackend) -> None:
    async with backend.open() as admin:
        await admin.set_guild_budget(GUILD, by=MOD, member_credits=7)
    stores = [PostgresStore.open(backend.url, max_size=4) for _ in range(4)]
    opened = [await s.__aenter__() for s in stores]
    try:
        outcomes = await asyncio.gather(*(ask(store, 11) for store in opened for _ in range(40)))
    finally:
        for s in stores:
            await s.__aexit__(None, None, None)
    assert outcomes.count(JobState.ACCEPTED) == 7
    assert set(outcomes) == {JobState.ACCEPTED, "member_credits"}
    [(held,)] = await backend.rows("SELECT SUM(credits) FROM usage_ledger WHERE member_id = 11")
    assert held == 7


async def test_many_pools_never_pass_a_members_job_cap_or_the_pool(
    backend: PostgresBackend,
) -> None:
    async with backend.open() as admin:
        await admin.set_guild_budget(GUILD, by=MOD, member_concurrent=2, server_credits=30)
    async with (
        PostgresStore.open(backend.url, max_size=5) as a,
        PostgresStore.open(backend.url, max_size=5) as b,
        PostgresStore.open(backend.url, max_size=5) as c,
    ):
        same_member = await asyncio.gather(*(ask(s, 11) for s in (a, b, c) * 20))
        everyone = await asyncio.gather(
            *(ask(s, 100 + n, cost=3) for n, s in enumerate((a, b, c) * 20))
        )
    assert same_member.count(JobState.ACCEPTED) == 2
    assert set(same_member) == {JobState.ACCEPTED, "member_concurrent"}
    # 2 credits went to member 11; 28 are left for 3-credit jobs: 9 of them.
    assert everyone.count(JobState.ACCEPTED) == 9
    [(total,)] = await backend.rows("SELECT SUM(credits) FROM usage_ledger")
    assert total == 29


async def test_a_reset_racing_reservations_forgives_exactly_what_it_reports(
    backend: PostgresBackend,
) -> None:
    async with backend.open() as first, backend.open() as second:
        tasks = [asyncio.ensure_future(ask(first if n % 2 else second, n)) for n in range(1, 61)]
        await asyncio.sleep(0)
        reset = await first.reset_usage(GUILD, None, defaults=DEFAULTS, by=MOD, now=NOW)
        outcomes = await asyncio.gather(*tasks)
        pool = await second.pool_usage(GUILD, defaults=DEFAULTS, now=NOW)
    assert outcomes.count(JobState.ACCEPTED) == 60
    # Every charge was either forgiven by the reset, as it said, or still counts: none both,
    # none neither, whichever connection committed first.
    assert reset.forgiven + pool.used + pool.held == 60
