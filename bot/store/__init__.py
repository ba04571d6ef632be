"""SQLite persistence: jobs, the usage ledger and per-server moderation.

All of the bot's SQL lives in this package.
"""

from bot.store.guild_records import (
    KEEP,
    Approval,
    ApprovalDecision,
    ApprovalRequest,
    AuditEntry,
    Ban,
    CreditGrant,
    ForgetReport,
    GuildDefaults,
    GuildSettings,
    Keep,
    MemberBusy,
    UsageReset,
)
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
    "KEEP",
    "PROGRESS_STATES",
    "TERMINAL_STATES",
    "Approval",
    "ApprovalDecision",
    "ApprovalRequest",
    "AuditEntry",
    "Ban",
    "CreditGrant",
    "ForgetReport",
    "GuildDefaults",
    "GuildSettings",
    "JobNotFound",
    "JobRecord",
    "JobState",
    "Keep",
    "MemberBusy",
    "NewJob",
    "QuotaExceeded",
    "QuotaRefusal",
    "RefusalReason",
    "Store",
    "Usage",
    "UsageReset",
]
