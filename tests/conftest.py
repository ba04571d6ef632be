"""Fixtures for every test: the two worlds the tests drive the real bot in.

``e2e`` starts a :class:`Sandbox` (local Discord and RunComfy) with fast timings and runs
``bot.app.run_bot`` against it, exactly as ``seedance-bot sandbox`` does. ``world`` drives the
cogs with Discord objects as autospecs over the real engine, the RunComfy emulator and SQLite.
A test changes either world's settings the same way, with ``@pytest.mark.settings(...)``:
``quota=QuotaConfig(...)`` and ``max_concurrent_jobs=...`` work in both, and the e2e world takes
any other :class:`SandboxSettings` field too.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator

import pytest

from sandbox.world import SandboxSettings
from tests.harness.e2e import E2E, FAST, running_sandbox
from tests.harness.settings import overrides
from tests.harness.worlds import world  # noqa: F401  (the cog tests' world, as a fixture)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "settings(**overrides): settings of the test's world (see tests/conftest.py)"
    )


@pytest.fixture
def sandbox_settings(request: pytest.FixtureRequest) -> SandboxSettings:
    """FAST, with the test's ``@pytest.mark.settings(...)`` overrides applied."""
    return dataclasses.replace(FAST, **overrides(request))


@pytest.fixture
async def e2e(
    sandbox_settings: SandboxSettings, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[E2E]:
    """The sandbox with the real bot connected; checked for Discord-visible faults afterwards.

    Errors logged by the bot or discord.py fail the test too: each is a member somewhere
    reading "Something went wrong", or a button that did nothing.
    """
    caplog.set_level(logging.WARNING)
    async with running_sandbox(sandbox_settings) as running:
        yield running
    errors = [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.get_records("call")
        if r.levelno >= logging.ERROR and r.name.split(".")[0] in ("bot", "cogs", "discord")
    ]
    assert errors == [], "the bot logged errors"
