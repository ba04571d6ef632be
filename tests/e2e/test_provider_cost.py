"""What a video really cost at the provider: stored per job, shown to moderators and operators."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.cli import main
from bot.store import open_store
from tests.harness.e2e import E2E, WAIT, embed_titles

# The RunComfy emulator prices clips as the upstream does: 864x480 x 24 fps x 5 s / 1024
# tokens at $1.8 per million, rounded by the provider to four places.
COST_480P_5S = 0.0875


async def test_the_cost_is_stored_per_job_and_shown_in_admin_show_and_the_usage_report(
    e2e: E2E, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emu = e2e.emu
    await e2e.animate("a heron lifts off the water")
    await e2e.wait_video()
    await e2e.wait_status(lambda m: "ready" in embed_titles(m))

    async with open_store(e2e.sandbox.config.database.path) as store:
        [job] = await store.recent_jobs(emu.guild_id, emu.requester_id)
        pool = await store.pool_usage(
            emu.guild_id, defaults=e2e.sandbox.config.quota.guild_defaults(), now=job.created_at
        )
    assert job.cost_usd == pytest.approx(COST_480P_5S)
    assert (pool.spent_usd, pool.priced_jobs) == (pytest.approx(COST_480P_5S), 1)

    show = await emu.invoke_command("admin show", {}, user_id=emu.moderator_id)
    await show.wait_until(lambda h: h.embeds, WAIT)
    fields = {f["name"]: f["value"] for f in show.embeds[0]["fields"]}
    assert show.ephemeral
    # The spend beside the credits, and a credit's worth at the model's list price.
    assert fields["Pool usage (" + pool.period_key + ")"].startswith("1 credit used")
    assert fields["Provider cost (USD)"] == (
        "$0.0875 spent on 1 video · ≈ $0.0875 per credit at list price (480p 5 s)"
    )

    config = tmp_path / "config.toml"
    config.write_text(f'[database]\npath = "{e2e.sandbox.config.database.path}"\n')
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["usage", "--config", str(config)])
    out = capsys.readouterr().out
    assert code == 0
    header, _, row, _, total = out.splitlines()
    assert header.split()[-1] == "USD"
    assert row.split()[:2] == [str(emu.guild_id), str(emu.requester_id)]
    assert row.split()[-1] == "0.0875" and total.split()[-1] == "0.0875"


async def test_admin_show_says_nothing_of_money_before_any_video(e2e: E2E) -> None:
    show = await e2e.emu.invoke_command("admin show", {}, user_id=e2e.emu.moderator_id)
    await show.wait_until(lambda h: h.embeds, WAIT)
    fields = {f["name"]: f["value"] for f in show.embeds[0]["fields"]}
    # No video yet: only the list price's estimate.
    assert fields["Provider cost (USD)"] == "≈ $0.0875 per credit at list price (480p 5 s)"
