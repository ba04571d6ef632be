"""What both stores read back the same way: a stored job row as a :class:`JobRecord`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from bot.models import JobRecord, JobState


class Row(Protocol):
    """A database row read by column name (``sqlite3.Row``, ``asyncpg.Record``)."""

    def __getitem__(self, key: str, /) -> Any: ...


def job_record(row: Row, when: Callable[[Any], datetime]) -> JobRecord:
    """A ``SELECT {JOB_COLUMNS} FROM jobs`` row as a record; ``when`` reads a stored time
    (each database keeps times its own way)."""

    def maybe(value: Any) -> datetime | None:
        return None if value is None else when(value)

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
        created_at=when(row["created_at"]),
        submitted_at=maybe(row["submitted_at"]),
        started_at=maybe(row["started_at"]),
        finished_at=maybe(row["finished_at"]),
        updated_at=when(row["updated_at"]),
        owner=row["owner"],
        lease_until=maybe(row["lease_until"]),
        attempts=row["attempts"],
        posting_at=maybe(row["posting_at"]),
        cost_usd=row["cost_usd"],
    )
