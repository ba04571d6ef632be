"""What an operator's monitoring sees of the real bot: ``/metrics`` counts a job from request
to delivery, and ``/healthz`` follows the database away and back.

The bot runs through ``run_bot`` against the emulators with ``[metrics] port`` set; the test
reads both endpoints over HTTP as Prometheus and a container health check would.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import replace

import pytest

from bot.config import MetricsConfig
from sandbox.world import Sandbox
from tests.harness.e2e import E2E, FAST, embed_titles
from tests.harness.ops import Samples, delta, free_port, get, scrape, value, wait_health


async def scrape_until(base: str, ready: Callable[[Samples], bool]) -> Samples:
    """Scrape until ``ready`` holds (a job's task ends a moment after its video is posted)."""
    async with asyncio.timeout(15):
        while True:
            samples, _ = await scrape(base)
            if ready(samples):
                return samples
            await asyncio.sleep(0.05)


async def test_metrics_count_a_job_and_health_follows_the_database(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with Sandbox(FAST) as sandbox:
        world = E2E(sandbox)
        config = replace(sandbox.config, metrics=MetricsConfig(port=port))
        await world.start_bot(config)
        try:
            # Up: the gateway is connected and the database takes writes.
            assert await wait_health(base, 200) == "ok\n"
            before, families = await scrape(base)
            assert families and all(name.startswith("seedance_") for name in families)

            await world.animate("a lighthouse in a storm")
            await world.wait_video()
            await world.wait_status(lambda m: "ready" in embed_titles(m))
            after = await scrape_until(
                base,
                lambda s: (
                    value(s, "seedance_jobs_in_flight") == 0
                    and delta(before, s, "seedance_jobs_finished_total", outcome="delivered") == 1
                ),
            )

            # One 480p 5 s job: one credit reserved, then charged; nothing released.
            assert delta(before, after, "seedance_credits_total", event="reserved") == 1
            assert delta(before, after, "seedance_credits_total", event="charged") == 1
            assert delta(before, after, "seedance_credits_total", event="released") == 0
            for state in ("accepted", "submitting", "queued", "delivering", "delivered"):
                assert delta(before, after, "seedance_job_transitions_total", state=state) == 1
            # Polls may or may not catch the short run in the act.
            assert delta(before, after, "seedance_job_transitions_total", state="running") <= 1
            assert delta(before, after, "seedance_jobs_finished_total", outcome="failed") == 0
            # The provider was asked to make it once, and polled until it was done.
            assert delta(before, after, "seedance_provider_calls_total", call="submit") == 1
            assert delta(before, after, "seedance_provider_calls_total", call="result") >= 2
            assert delta(before, after, "seedance_poll_delay_seconds_count") >= 1
            errors = [k for k in after if k[0] == "seedance_provider_errors_total"]
            assert all(delta(before, after, n, **dict(ls)) == 0 for n, ls in errors)
            assert value(after, "seedance_provider_breaker_open") == 0
            # Discord's REST calls: the deferral, the status message and the video post.
            for route in ("interactions", "channels"):
                count = "seedance_discord_request_seconds_count"
                assert delta(before, after, count, route=route) >= 1
            assert value(after, "seedance_provider_slots_in_use") == 0
            assert value(after, "seedance_jobs_waiting_for_slot") == 0
            assert delta(before, after, "seedance_lease_takeovers_total") == 0
            assert value(after, "seedance_event_loop_lag_seconds_count") >= 1
            assert value(after, "seedance_process_resident_memory_bytes") > 0

            # The database goes away: another process holds its write lock.
            holder = sqlite3.connect(
                config.database.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            try:
                await asyncio.to_thread(holder.execute, "BEGIN IMMEDIATE")
                status, _, text = await get(f"{base}/healthz")
                assert status == 503
                assert text.startswith("database: ") and text.endswith("\n")
                assert text.count("\n") == 1  # one line
                # Still gone: answered at once, without queueing a second write behind the first.
                status, _, text = await get(f"{base}/healthz")
                assert (status, text.split(":")[0]) == (503, "database")
                # The metrics still answer while the database does not.
                assert (await scrape(base))[0]
            finally:
                await asyncio.to_thread(holder.execute, "ROLLBACK")
                holder.close()
            # Back: healthy again without a restart.
            assert await wait_health(base, 200) == "ok\n"
        finally:
            await world.stop_bot()
        world.check_discord_saw_nothing_wrong()
    errors = [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.get_records("call")
        if r.levelno >= logging.ERROR and r.name.split(".")[0] in ("bot", "cogs", "discord")
    ]
    assert errors == [], "the bot logged errors"
