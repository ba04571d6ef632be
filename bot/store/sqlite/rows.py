"""Conversions between stored rows and records, and the SQL fragments they depend on."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from bot.models import JobRecord, JobState
from bot.store.records import job_record

# Word for word the WHERE clause of the partial index jobs_open in V1__initial.sql, so the
# planner can use that index for the concurrency counts. Must agree with TERMINAL_STATES.
OPEN = "state NOT IN ('delivered', 'failed', 'cancelled', 'timed_out')"
# The same set spelled positively, which lets a scan over all guilds seek the jobs_state index.
OPEN_STATES = ", ".join(f"'{state.value}'" for state in JobState if not state.is_terminal)
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


def to_text(value: datetime) -> str:
    """Store form of a datetime: UTC ISO-8601 with microseconds, which sorts in time order."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"the store takes aware datetimes only, got naive {value.isoformat()}")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_text(text: str) -> datetime:
    """A stored time as an aware UTC datetime."""
    return datetime.fromisoformat(text).astimezone(UTC)


def from_opt_text(text: str | None) -> datetime | None:
    """A nullable stored time."""
    return None if text is None else from_text(text)


def job_from_row(row: sqlite3.Row) -> JobRecord:
    """A ``SELECT {JOB_COLUMNS} FROM jobs`` row as a record."""
    return job_record(row, from_text)
