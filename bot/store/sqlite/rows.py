"""Conversions between stored rows and records, and the SQL fragments they depend on."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from bot.models import JobRecord, JobState

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
        created_at=from_text(row["created_at"]),
        submitted_at=from_opt_text(row["submitted_at"]),
        started_at=from_opt_text(row["started_at"]),
        finished_at=from_opt_text(row["finished_at"]),
        updated_at=from_text(row["updated_at"]),
        owner=row["owner"],
        lease_until=from_opt_text(row["lease_until"]),
        attempts=row["attempts"],
        posting_at=from_opt_text(row["posting_at"]),
        cost_usd=row["cost_usd"],
    )
