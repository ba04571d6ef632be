"""SQLite persistence: jobs and the usage ledger. All of the bot's SQL lives in this package."""

from bot.store.records import (
    FAILURE_STATES,
    PROGRESS_STATES,
    TERMINAL_STATES,
    JobNotFound,
    JobRecord,
    JobState,
    NewJob,
    QuotaExceeded,
    QuotaRefusal,
    RefusalReason,
    Usage,
)
from bot.store.store import Store

__all__ = [
    "FAILURE_STATES",
    "PROGRESS_STATES",
    "TERMINAL_STATES",
    "JobNotFound",
    "JobRecord",
    "JobState",
    "NewJob",
    "QuotaExceeded",
    "QuotaRefusal",
    "RefusalReason",
    "Store",
    "Usage",
]
