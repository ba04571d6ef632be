"""SQLite and PostgreSQL give the same answers: one long, seeded mix of what moderators and
members do (budgets, periods, role limits, grants, resets, pauses, bans, channels, approvals,
jobs ending) played on both stores side by side, every answer compared as the member or the
moderator would read it.

Each store is tested against expected figures elsewhere; this walks through combinations no
single test spells out (a grant in a weekly period after a reset, a role cap with approvals on
across a month's end...), where two implementations of the same rules could drift apart.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.errors import GateClosed, QuotaExceeded
from bot.models import GuildDefaults, JobState, NewJob
from bot.quota import Period
from bot.store import Store, open_store
from bot.store.postgres import PostgresStore
from tests.harness.postgres import PostgresServer

GUILD = 4000
MOD = 99
MEMBERS = (11, 12, 13, 14)
ROLES = (501, 502)
CHANNELS = (GUILD + 1, GUILD + 2)
PARENT = GUILD + 9
START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # a Friday; the month ends 10 days later
DEFAULTS = GuildDefaults(
    period=Period.DAY, server_credits=20, member_credits=6, member_concurrent=3,
    server_concurrent=6,
)  # fmt: skip
STEPS = 500

Outcome = object
Op = Callable[["Side", datetime], Awaitable[Outcome]]


@dataclass
class Side:
    """One store, and the ids of its jobs not known to have ended, oldest first."""

    store: Store
    open: list[int] = field(default_factory=list)

    def job(self, index: int) -> int | None:
        return self.open[index % len(self.open)] if self.open else None


def _what(error: Exception) -> Outcome:
    """A refusal as its reader sees it."""
    if isinstance(error, QuotaExceeded):
        return ("refused", error.refusal)
    if isinstance(error, GateClosed):
        return ("closed", error.reason, sorted(error.allowed_channels))
    return ("error", type(error).__name__, str(error))


def _reserve(member: int, cost: int, roles: tuple[int, ...], channel: int, in_thread: bool) -> Op:
    async def op(side: Side, now: datetime) -> Outcome:
        job = NewJob(GUILD, channel, member, "a cat", "https://cdn.test/a.png", None, "480p", 5)
        record = await side.store.reserve_request(
            job,
            cost=cost,
            role_ids=roles,
            defaults=DEFAULTS,
            now=now,
            parent_channel_id=PARENT if in_thread else None,
        )
        side.open.append(record.id)
        return ("job", record.state, record.credits, record.period_key)

    return op


def _on_job(index: int, action: str) -> Op:
    async def op(side: Side, now: datetime) -> Outcome:
        job_id = side.job(index)
        if job_id is None:
            return None
        store = side.store
        if action == "approve":
            done = await store.approve_request(GUILD, job_id, by=MOD, now=now, defaults=DEFAULTS)
            return (done.changed, done.job.state, done.job.credits, done.job.period_key)
        if action == "deliver":
            ended = await store.finish_delivered(job_id, result_message_id=None, now=now)
        elif action == "fail":
            ended = await store.finish_failed(job_id, JobState.FAILED, error="broke", now=now)
        else:
            ended = (await store.deny_request(GUILD, job_id, by=MOD, now=now)).changed
        if ended:
            side.open.remove(job_id)
        return ended

    return op


def _moderate(rng: random.Random) -> Op:
    """One moderator action, its arguments drawn now (the same on both sides)."""
    kind = rng.choice(
        ["budget", "budget", "period", "role", "grant", "reset", "pause", "pause", "pause",
         "ban", "ban", "channel", "channel", "approvals", "approvals"]
    )  # fmt: skip
    member = rng.choice(MEMBERS)
    flag = rng.random() < 0.5
    # Bans and pauses are lifted more often than made, so requests mostly get through.
    sticks = rng.random() < (0.12 if kind == "pause" else 0.25)
    field_name = rng.choice(
        ["server_credits", "member_credits", "member_concurrent", "server_concurrent"]
    )
    if field_name.endswith("credits") or kind == "role":
        number = rng.choice([None, 0, 2, 5, 8, 15, 30, 60])
    else:
        number = rng.choice([None, 2, 3, 6, 10])
    period = rng.choice([None, Period.DAY, Period.WEEK, Period.MONTH])
    role = rng.choice(ROLES)
    grant = rng.choice([-3, -1, 2, 4, 10])
    channel = rng.choice((*CHANNELS, PARENT))

    async def op(side: Side, now: datetime) -> Outcome:
        store = side.store
        if kind == "budget":
            await store.set_guild_budget(GUILD, by=MOD, now=now, **{field_name: number})
        elif kind == "period":
            await store.set_guild_budget(GUILD, by=MOD, now=now, period=period)
        elif kind == "role":
            await store.set_role_limit(GUILD, role, number, by=MOD, now=now)
        elif kind == "grant":
            given = await store.grant_credits(
                GUILD, member, grant, defaults=DEFAULTS, by=MOD, now=now
            )
            return (given.credits, given.period_key, given.period_total)
        elif kind == "reset":
            reset = await store.reset_usage(
                GUILD, member if flag else None, defaults=DEFAULTS, by=MOD, now=now
            )
            return (reset.member_id, reset.forgiven, reset.period_key)
        elif kind == "pause":
            await store.set_paused(GUILD, sticks, by=MOD, now=now)
        elif kind == "ban":
            if sticks:
                return await store.ban_member(GUILD, member, by=MOD, now=now)
            return await store.unban_member(GUILD, member, by=MOD, now=now)
        elif kind == "channel":
            if flag:
                return await store.allow_channel(GUILD, channel, by=MOD, now=now)
            return await store.clear_channels(GUILD, by=MOD, now=now)
        else:
            await store.set_approvals(GUILD, flag, by=MOD, now=now)
        return None

    return op


def script(seed: int) -> list[tuple[timedelta, Op, int]]:
    """(time since the step before, the step, the member whose usage to compare after it)."""
    rng = random.Random(seed)
    steps: list[tuple[timedelta, Op, int]] = []
    for _ in range(STEPS):
        pause = timedelta(minutes=rng.choice([0, 1, 5, 30, 120, 600]))
        member = rng.choice(MEMBERS)
        roll = rng.random()
        op: Op
        if roll < 0.45:
            op = _reserve(
                member,
                rng.choice([0, 1, 1, 2, 3, 5]),
                tuple(r for r in ROLES if rng.random() < 0.3),
                rng.choice(CHANNELS),
                rng.random() < 0.2,
            )
        elif roll < 0.8:
            action = rng.choice(["deliver", "fail", "approve", "deny"])
            op = _on_job(rng.randrange(1000), action)
        else:
            op = _moderate(rng)
        steps.append((pause, op, member))
    return steps


async def _play(side: Side, op: Op, now: datetime) -> Outcome:
    try:
        return await op(side, now)
    except (QuotaExceeded, GateClosed, ValueError, LookupError) as error:
        return _what(error)


# Seeds whose walks reach every answer (the last assertion checks they still do).
@pytest.mark.parametrize("seed", [1, 3, 6])
async def test_sqlite_and_postgresql_answer_alike(
    seed: int, tmp_path: Path, postgres_server: PostgresServer, postgres_database: str
) -> None:
    async with (
        open_store(tmp_path / "bot.db") as sqlite,
        PostgresStore.open(postgres_server.url(postgres_database)) as postgres,
    ):
        sides = (Side(sqlite), Side(postgres))
        now = START
        seen: set[object] = set()
        for number, (pause, op, member) in enumerate(script(seed)):
            now += pause
            answers = [await _play(side, op, now) for side in sides]
            seen.add(_kind(answers[0]))
            usages = [
                await side.store.member_usage(
                    GUILD, member, role_ids=ROLES[:1], defaults=DEFAULTS, now=now
                )
                for side in sides
            ]
            assert answers[0] == answers[1], f"step {number} at {now}"
            assert usages[0] == usages[1], f"usage after step {number} at {now}"
    # The walk went through every answer a request can get.
    assert seen >= {
        JobState.ACCEPTED, JobState.PENDING_APPROVAL, "member_credits", "server_credits",
        "member_concurrent", "server_concurrent", "paused", "banned", "channel",
    }  # fmt: skip


def _kind(answer: Outcome) -> object:
    """Which answer a request got: its job's state, or the reason it was refused."""
    if isinstance(answer, tuple) and answer[0] == "job":
        return answer[1]
    if isinstance(answer, tuple) and answer[0] == "refused":
        return answer[1].reason
    if isinstance(answer, tuple) and answer[0] == "closed":
        return answer[1]
    return None
