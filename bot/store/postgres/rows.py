"""Conversions between stored rows and records, and the SQL fragments they depend on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeAlias

import asyncpg

from bot.models import JobRecord, JobState

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

# A string: asyncpg's classes are generic for the type checker only.
Conn: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"
"""A connection lent by the store's pool, inside one of the store's transactions."""

# Word for word the WHERE clause of the partial index jobs_open in V1__initial.sql.
OPEN = "state NOT IN ('delivered', 'failed', 'cancelled', 'timed_out')"
# Open jobs the runner drives: all but requests still waiting for a moderator.
RUNNABLE_STATES = ", ".join(
    f"'{state.value}'"
    for state in JobState
    if not state.is_terminal and state is not JobState.PENDING_APPROVAL
)

JOB_COLUMNS = (
    "id, guild_id, channel_id, member_id, prompt, image_url, last_frame_url, resolution, "
    "duration, credits, state, request_id, status_url, result_url, cancel_url, queue_position, "
    "status_message_id, result_message_id, video_url, error, period_key, created_at, "
    "submitted_at, started_at, finished_at, updated_at, owner, lease_until, attempts, posting_at, "
    "cost_usd"
)


def utc(value: datetime) -> datetime:
    """A datetime as the store takes it: aware, in UTC (a naive one is a caller's mistake)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"the store takes aware datetimes only, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def opt_utc(value: datetime | None) -> datetime | None:
    """A nullable datetime as the store takes it."""
    return None if value is None else utc(value)


def now_or(value: datetime | None) -> datetime:
    """``value`` as the store takes it, or the current time."""
    return utc(value or datetime.now(UTC))


def affected(status: str) -> int:
    """Rows an INSERT, UPDATE or DELETE touched, from its command tag ("UPDATE 3")."""
    return int(status.rsplit(" ", 1)[-1])


def time_of(value: datetime) -> datetime:
    """A stored timestamptz as an aware UTC datetime, whatever the session's time zone."""
    return value.astimezone(UTC)


def opt_time_of(value: datetime | None) -> datetime | None:
    """A nullable stored timestamptz."""
    return None if value is None else time_of(value)


def job_from_row(row: asyncpg.Record) -> JobRecord:
    """A ``SELECT {JOB_COLUMNS} FROM jobs`` row as a record."""
    return JobRecord(
        id=row["id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        member_id=row["member_id"],
        prompt=row["prompt"],
        image_url=row["image_url"],
        last_frame_url=row["last_frame_url"],
        resolution=row["resolution"],
        duration=row["duration"],
        credits=row["credits"],
        state=JobState(row["state"]),
        request_id=row["request_id"],
        status_url=row["status_url"],
        result_url=row["result_url"],
        cancel_url=row["cancel_url"],
        queue_position=row["queue_position"],
        status_message_id=row["status_message_id"],
        result_message_id=row["result_message_id"],
        video_url=row["video_url"],
        error=row["error"],
        period_key=row["period_key"],
        created_at=time_of(row["created_at"]),
        submitted_at=opt_time_of(row["submitted_at"]),
        started_at=opt_time_of(row["started_at"]),
        finished_at=opt_time_of(row["finished_at"]),
        updated_at=time_of(row["updated_at"]),
        owner=row["owner"],
        lease_until=opt_time_of(row["lease_until"]),
        attempts=row["attempts"],
        posting_at=opt_time_of(row["posting_at"]),
        cost_usd=row["cost_usd"],
    )
