"""Fixtures for every test: the two worlds the tests drive the real bot in.

``e2e`` starts a :class:`Sandbox` (local Discord and RunComfy) with fast timings and runs
``bot.app.run_bot`` against it, exactly as ``seedance-bot sandbox`` does. ``world`` drives the
cogs with Discord objects as autospecs over the real engine, the RunComfy emulator and a store.
A test changes either world's settings the same way, with ``@pytest.mark.settings(...)``:
``quota=QuotaConfig(...)`` and ``max_concurrent_jobs=...`` work in both, and the e2e world takes
any other :class:`SandboxSettings` field too.

The store: ``backend`` (and the cog ``world`` built on it) is SQLite, or each backend named by
``@pytest.mark.store_backends("sqlite", "postgres")``, the test then running once per backend.
PostgreSQL is a server the session starts itself (tests/harness/postgres.py), one database per
test; without its binaries those runs are skipped, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.config import DatabaseConfig
from sandbox.world import SandboxSettings
from tests.harness.backends import BACKENDS, Backend, PostgresBackend, SqliteBackend
from tests.harness.e2e import E2E, FAST, running_sandbox
from tests.harness.postgres import PostgresMissing, PostgresServer, running_postgres
from tests.harness.settings import overrides
from tests.harness.worlds import world  # noqa: F401  (the cog tests' world, as a fixture)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "settings(**overrides): settings of the test's world (see tests/conftest.py)"
    )
    config.addinivalue_line(
        "markers",
        "store_backends(*names): run the test once per store backend named (sqlite, postgres)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("store_backends")
    if marker is None or "store_backend" not in metafunc.fixturenames:
        return
    unknown = set(marker.args) - set(BACKENDS)
    if unknown or not marker.args:
        raise pytest.UsageError(f"store_backends takes some of {BACKENDS}, got {marker.args}")
    metafunc.parametrize("store_backend", marker.args, indirect=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """This test process's own PostgreSQL server (started on first use, stopped at the end)."""
    try:
        with running_postgres() as server:
            yield server
    except PostgresMissing as missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI needs PostgreSQL for the store tests: {missing}")
        pytest.skip(str(missing))


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the test server (its name), dropped after the test."""
    with postgres_server.database() as name:
        yield name


@pytest.fixture
def store_backend(request: pytest.FixtureRequest) -> str:
    """The store backend of this run of the test (see ``store_backends``)."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def backend(store_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    """The test's database on its backend, empty until a store opens it."""
    if store_backend == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        return PostgresBackend(server, request.getfixturevalue("postgres_database"))
    return SqliteBackend(tmp_path / "data" / "bot.db")


@pytest.fixture
def sandbox_settings(request: pytest.FixtureRequest) -> SandboxSettings:
    """FAST, with the test's ``@pytest.mark.settings(...)`` overrides applied."""
    return dataclasses.replace(FAST, **overrides(request))


@pytest.fixture
async def e2e(
    sandbox_settings: SandboxSettings,
    caplog: pytest.LogCaptureFixture,
    store_backend: str,
    request: pytest.FixtureRequest,
) -> AsyncIterator[E2E]:
    """The sandbox with the real bot connected; checked for Discord-visible faults afterwards.

    The bot's store is the sandbox's SQLite file, or a PostgreSQL database of the test's own
    under ``@pytest.mark.store_backends("sqlite", "postgres")``.

    Errors logged by the bot or discord.py fail the test too: each is a member somewhere
    reading "Something went wrong", or a button that did nothing.
    """
    caplog.set_level(logging.WARNING)
    database = None
    if store_backend == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        database = DatabaseConfig(url=server.url(request.getfixturevalue("postgres_database")))
    async with running_sandbox(sandbox_settings, database) as running:
        yield running
    errors = [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.get_records("call")
        if r.levelno >= logging.ERROR and r.name.split(".")[0] in ("bot", "cogs", "discord")
    ]
    assert errors == [], "the bot logged errors"
