"""SQLite's running usage totals answer exactly as summing the ledger does.

Budgets are read from per-day totals the ledger's triggers keep (V7). Here random histories
of requests, deliveries, failures, approvals, denials, resets, forgotten members and period
changes are played on a real store, and after every step the totals each member and the
server would see, for every kind of period around the step's time, are compared with the
ledger summed row by row under the reset rule (the way the budgets were read before V7).
"""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.errors import MemberBusy, QuotaExceeded
from bot.models import GuildDefaults, JobState, NewJob
from bot.quota import CreditTotals, Period, period_window
from bot.store.sqlite.inline import InlineConnection, run_inline
from bot.store.sqlite.ledger import credit_totals
from bot.store.sqlite.schema import load_migrations
from bot.store.sqlite.store import SqliteStore

GUILD = 7
OTHER_GUILD = 8
MEMBERS = (21, 22, 23)
FORGOTTEN = 0
MOD = 99
START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
DEFAULTS = GuildDefaults(
    period=Period.DAY, server_credits=40, member_credits=6, member_concurrent=4,
    server_concurrent=12,
)  # fmt: skip

# The budgets as they were read before V7: every row of the window, each checked against
# the resets after it.
_NOT_RESET = (
    "NOT EXISTS (SELECT 1 FROM usage_resets r WHERE r.guild_id = :guild AND {who} "
    "AND usage_ledger.mark < r.mark AND usage_ledger.created_at >= r.window_start)"
)
_IN_WINDOW = "created_at >= :start AND created_at < :end AND state IN ('reserved', 'committed')"
MEMBER_SUMS = (
    "SELECT "
    "COALESCE(SUM(CASE WHEN basis = 'cap' AND state = 'committed' THEN credits END), 0), "
    "COALESCE(SUM(CASE WHEN basis = 'cap' AND state = 'reserved' THEN credits END), 0), "
    "COALESCE(SUM(CASE WHEN basis = 'approved' THEN credits END), 0), "
    "COALESCE(SUM(CASE WHEN basis = 'pending' THEN credits END), 0) "
    f"FROM usage_ledger WHERE guild_id = :guild AND member_id = :member AND {_IN_WINDOW} AND "
    + _NOT_RESET.format(who="(r.member_id = :member OR r.member_id IS NULL)")
)
SERVER_SUMS = (
    "SELECT COALESCE(SUM(CASE WHEN state = 'committed' THEN credits END), 0), "
    "COALESCE(SUM(CASE WHEN state = 'reserved' THEN credits END), 0) "
    f"FROM usage_ledger WHERE guild_id = :guild AND {_IN_WINDOW} AND "
    + _NOT_RESET.format(who="r.member_id IS NULL")
)


def summed(
    raw: sqlite3.Connection, guild: int, member: int, when: datetime, period: Period
) -> CreditTotals:
    window = period_window(period, when)
    params = {
        "guild": guild,
        "member": member,
        "start": window.start.isoformat(timespec="microseconds"),
        "end": window.end.isoformat(timespec="microseconds"),
    }
    m = raw.execute(MEMBER_SUMS, params).fetchone()
    s = raw.execute(SERVER_SUMS, params).fetchone()
    return CreditTotals(
        member_used=m[0], member_reserved=m[1], member_approved=m[2], member_pending=m[3],
        server_used=s[0], server_reserved=s[1],
    )  # fmt: skip


def kept(
    raw: sqlite3.Connection, guild: int, member: int, when: datetime, period: Period
) -> CreditTotals:
    return run_inline(
        credit_totals(InlineConnection(raw), guild, member, period_window(period, when))
    )


def request(member: int, guild: int = GUILD) -> NewJob:
    return NewJob(
        guild_id=guild,
        channel_id=guild + 100,
        member_id=member,
        prompt="a lighthouse in fog",
        image_url="https://cdn.discordapp.com/attachments/1/2/first.png",
        last_frame_url=None,
        resolution="480p",
        duration=5,
    )


async def play(store: SqliteStore, raw: sqlite3.Connection, rng: random.Random, steps: int) -> int:
    """Random history; after each step every view agrees. Returns the steps that changed
    the ledger, so a history that did nothing cannot pass."""
    now = START
    open_jobs: list[int] = []
    pending: list[int] = []
    changed = 0
    await store.set_approvals(GUILD, True, by=MOD, now=now)
    for _ in range(steps):
        now += timedelta(hours=rng.choice([0, 0, 1, 3, 7, 20, 30]))
        action = rng.choices(
            ["ask", "deliver", "fail", "approve", "deny", "reset", "forget", "period", "other"],
            weights=[10, 4, 3, 2, 1, 2, 1, 1, 2],
        )[0]
        try:
            if action == "ask":
                job = await store.reserve_request(
                    request(rng.choice(MEMBERS)), cost=rng.choice([1, 2, 5]), role_ids=(),
                    defaults=DEFAULTS, now=now,
                )  # fmt: skip
                (pending if job.state is JobState.PENDING_APPROVAL else open_jobs).append(job.id)
                changed += 1
            elif action == "other":
                await store.reserve_request(
                    request(MEMBERS[0], OTHER_GUILD), cost=1, role_ids=(), defaults=DEFAULTS,
                    now=now,
                )  # fmt: skip
            elif action in ("deliver", "fail") and open_jobs:
                job_id = open_jobs.pop(rng.randrange(len(open_jobs)))
                if action == "deliver":
                    changed += await store.finish_delivered(job_id, result_message_id=1, now=now)
                else:
                    changed += await store.finish_failed(
                        job_id, JobState.FAILED, error="boom", now=now
                    )
            elif action == "approve" and pending:
                job_id = pending.pop(rng.randrange(len(pending)))
                await store.approve_request(GUILD, job_id, by=MOD, now=now, defaults=DEFAULTS)
                open_jobs.append(job_id)
                changed += 1
            elif action == "deny" and pending:
                job_id = pending.pop(rng.randrange(len(pending)))
                await store.deny_request(GUILD, job_id, by=MOD, now=now)
                changed += 1
            elif action == "reset":
                member = rng.choice([None, *MEMBERS])
                await store.reset_usage(GUILD, member, defaults=DEFAULTS, by=MOD, now=now)
                changed += 1
            elif action == "forget":
                member = rng.choice(MEMBERS)
                await store.forget_member(GUILD, member, by=MOD, now=now)
                pending = [j for j in pending if await store.get_job(j) is not None]
                changed += 1
            elif action == "period":
                await store.set_guild_budget(
                    GUILD, by=MOD, now=now, period=rng.choice(list(Period))
                )
        except (QuotaExceeded, MemberBusy):
            pass
        for member in (*MEMBERS, FORGOTTEN):
            for period in Period:
                for when in (now, now - timedelta(days=2)):
                    assert kept(raw, GUILD, member, when, period) == summed(
                        raw, GUILD, member, when, period
                    ), (action, member, period, when)
    return changed


@pytest.mark.parametrize("seed", range(6))
async def test_running_totals_match_the_ledger_summed(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "bot.db"
    async with SqliteStore.open(path) as store:
        raw = sqlite3.connect(path)
        try:
            changed = await play(store, raw, random.Random(seed), steps=120)
        finally:
            raw.close()
    assert changed >= 40


async def test_the_upgrade_totals_an_existing_ledger(tmp_path: Path) -> None:
    """A database made before V7 gets totals equal to its ledger summed, resets included."""
    path = tmp_path / "bot.db"
    async with SqliteStore.open(path) as store:
        raw = sqlite3.connect(path)
        await play(store, raw, random.Random(99), steps=60)
        before = {
            (m, p): summed(raw, GUILD, m, START + timedelta(days=3), p)
            for m in (*MEMBERS, FORGOTTEN)
            for p in Period
        }
        # Back to V6: the totals and their triggers gone, as an older release left the file.
        for name in ("usage_ledger_counted", "usage_ledger_uncounted", "usage_ledger_recounted",
                     "usage_reset_zeroes", "usage_reset_removed"):  # fmt: skip
            raw.execute(f"DROP TRIGGER {name}")
        raw.execute("DROP TABLE usage_member_days")
        raw.execute("DROP TABLE usage_server_days")
        raw.execute("PRAGMA user_version = 6")
        raw.commit()
        raw.close()
    async with SqliteStore.open(path) as store:
        assert await store.schema_version() == load_migrations()[-1].version
        raw = sqlite3.connect(path)
        try:
            for (member, period), totals in before.items():
                assert kept(raw, GUILD, member, START + timedelta(days=3), period) == totals
            assert any(t.server_used or t.server_reserved for t in before.values())
        finally:
            raw.close()


async def test_a_removed_member_reset_counts_its_rows_again(tmp_path: Path) -> None:
    """Resets are removed only with a forgotten member's rows; should one go while its rows
    stay, the member's totals are recounted from the ledger, as the sums would count."""
    path = tmp_path / "bot.db"
    async with SqliteStore.open(path) as store:
        for _ in range(3):
            await store.reserve_request(
                request(MEMBERS[0]), cost=2, role_ids=(), defaults=DEFAULTS, now=START
            )
        await store.reset_usage(GUILD, MEMBERS[0], defaults=DEFAULTS, by=MOD, now=START)
        raw = sqlite3.connect(path)
        try:
            assert kept(raw, GUILD, MEMBERS[0], START, Period.DAY).member_reserved == 0
            raw.execute("DELETE FROM usage_resets WHERE member_id = ?", (MEMBERS[0],))
            raw.commit()
            totals = kept(raw, GUILD, MEMBERS[0], START, Period.DAY)
            assert totals == summed(raw, GUILD, MEMBERS[0], START, Period.DAY)
            assert totals.member_reserved == 6
        finally:
            raw.close()
