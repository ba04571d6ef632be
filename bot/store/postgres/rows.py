"""Conversions between stored rows and records, and the SQL fragments they depend on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeAlias

import asyncpg

from bot.models import JobRecord, JobState
from bot.store.records import job_record

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
    return job_record(row, time_of)
