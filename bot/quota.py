"""Quota arithmetic: accounting periods, job costs and limits. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal

__all__ = [
    "DEFAULT_COSTS",
    "CostTable",
    "Limits",
    "Period",
    "PeriodWindow",
    "job_cost",
    "period_window",
]


class Period(StrEnum):
    """Length of an accounting period; every period is measured in UTC."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    @classmethod
    def of_key(cls, key: str) -> Period:
        """The period a window key belongs to: ``2026-11-20`` a day, ``2026-W47`` a week,
        ``2026-11`` a month."""
        if "W" in key:
            return cls.WEEK
        return cls.DAY if key.count("-") == 2 else cls.MONTH


@dataclass(frozen=True)
class PeriodWindow:
    """One accounting period: a stable key for the ledger and its UTC bounds.

    ``start`` is inclusive, ``end`` is exclusive and is the moment budgets reset.
    """

    key: str
    start: datetime
    end: datetime

    @property
    def period(self) -> Period:
        return Period.of_key(self.key)


def period_window(period: Period, now: datetime) -> PeriodWindow:
    """Return the window of ``period`` that contains ``now`` (which must be timezone-aware).

    Keys: ``2026-11-20`` for a day, ``2026-W47`` for an ISO week (Monday 00:00 UTC to the
    next Monday; the year is the ISO year, so 2027-01-01 falls in ``2026-W53``), ``2026-11``
    for a month.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"period_window needs an aware datetime, got naive {now.isoformat()}")
    now = now.astimezone(UTC)
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
    match Period(period):
        case Period.DAY:
            return PeriodWindow(
                key=midnight.strftime("%Y-%m-%d"),
                start=midnight,
                end=midnight + timedelta(days=1),
            )
        case Period.WEEK:
            iso = now.isocalendar()
            start = midnight - timedelta(days=iso.weekday - 1)
            return PeriodWindow(
                key=f"{iso.year:04d}-W{iso.week:02d}",
                start=start,
                end=start + timedelta(days=7),
            )
        case Period.MONTH:
            start = datetime(now.year, now.month, 1, tzinfo=UTC)
            if now.month == 12:
                end = datetime(now.year + 1, 1, 1, tzinfo=UTC)
            else:
                end = datetime(now.year, now.month + 1, 1, tzinfo=UTC)
            return PeriodWindow(key=start.strftime("%Y-%m"), start=start, end=end)


CostTable = Mapping[str, Mapping[int, int]]
"""Credits per job: resolution (``"480p"``) -> duration in seconds -> credits."""

DEFAULT_COSTS: CostTable = {
    "480p": {5: 1, 10: 2},
    "720p": {5: 2, 10: 4},
    "1080p": {5: 5, 10: 10},
}


def job_cost(costs: CostTable, resolution: str, duration: int) -> int:
    """Credits charged for one video of ``resolution`` and ``duration`` seconds."""
    try:
        return costs[resolution][duration]
    except KeyError:
        known = ", ".join(
            f"{res} {secs}s" for res, by_secs in costs.items() for secs in sorted(by_secs)
        )
        raise ValueError(
            f"no cost configured for {resolution} {duration}s (configured: {known or 'none'})"
        ) from None


@dataclass(frozen=True)
class Limits:
    """Budgets and caps that apply to one member in one server for the current period."""

    member_credits: int
    server_credits: int
    member_concurrent: int
    server_concurrent: int

    def __post_init__(self) -> None:
        for name in ("member_credits", "server_credits", "member_concurrent", "server_concurrent"):
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"Limits.{name} must not be negative, got {value}")


@dataclass(frozen=True)
class CreditTotals:
    """Credits of one member and their server in one period, resets applied."""

    member_used: int
    """Committed, on the member's cap."""
    member_reserved: int
    """Held by open jobs, on the member's cap."""
    member_approved: int
    """Held or committed by jobs a moderator approved beyond the cap."""
    member_pending: int
    """Held by requests waiting for a moderator."""
    server_used: int
    """Committed by anyone in the server, whatever the basis."""
    server_reserved: int
    """Held by anyone in the server, whatever the basis."""

    @property
    def member_held(self) -> int:
        """What counts against the member's cap."""
        return self.member_used + self.member_reserved

    @property
    def server_held(self) -> int:
        """What counts against the pool."""
        return self.server_used + self.server_reserved


Verdict = Literal[
    "accept",
    "pending",
    "member_credits",
    "server_credits",
    "member_concurrent",
    "server_concurrent",
]
"""Accept, send to the moderators, or the reason for a refusal (a `RefusalReason`)."""


def quota_verdict(
    *,
    cost: int,
    limits: Limits,
    totals: CreditTotals,
    active_member: int,
    active_server: int,
    approvals: bool,
) -> Verdict:
    """Accept, send to the moderators, or the reason for a refusal.

    Checked in the order member credits, server credits, member concurrency, server
    concurrency. With approvals on, a job over the member's cap goes to the moderators if
    the pool can still hold it and the member has a free job slot.
    """
    over_member = totals.member_held + cost > limits.member_credits
    over_server = totals.server_held + cost > limits.server_credits
    if over_member and not approvals:
        return "member_credits"
    if over_server:
        return "server_credits"
    if active_member >= limits.member_concurrent:
        return "member_concurrent"
    if over_member:
        return "pending"
    if active_server >= limits.server_concurrent:
        return "server_concurrent"
    return "accept"
