"""Accounting periods, job costs and limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.quota import DEFAULT_COSTS, Limits, Period, PeriodWindow, job_cost, period_window


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "now", "expected"),
    [
        (
            Period.DAY,
            utc(2026, 11, 20, 15, 30),
            PeriodWindow("2026-11-20", utc(2026, 11, 20), utc(2026, 11, 21)),
        ),
        (
            Period.DAY,
            utc(2026, 12, 31, 23, 59, 59, 999999),
            PeriodWindow("2026-12-31", utc(2026, 12, 31), utc(2027, 1, 1)),
        ),
        (
            Period.DAY,
            utc(2028, 2, 29, 0, 0),
            PeriodWindow("2028-02-29", utc(2028, 2, 29), utc(2028, 3, 1)),
        ),
        (
            Period.WEEK,
            utc(2026, 11, 20, 15, 30),
            PeriodWindow("2026-W47", utc(2026, 11, 16), utc(2026, 11, 23)),
        ),
        # Sunday's last instant is still the old week; Monday 00:00 starts the next.
        (
            Period.WEEK,
            utc(2026, 11, 22, 23, 59, 59, 999999),
            PeriodWindow("2026-W47", utc(2026, 11, 16), utc(2026, 11, 23)),
        ),
        (
            Period.WEEK,
            utc(2026, 11, 23),
            PeriodWindow("2026-W48", utc(2026, 11, 23), utc(2026, 11, 30)),
        ),
        # 2026 has 53 ISO weeks; its week 53 runs into January 2027 under the ISO year 2026.
        (
            Period.WEEK,
            utc(2026, 12, 31, 12),
            PeriodWindow("2026-W53", utc(2026, 12, 28), utc(2027, 1, 4)),
        ),
        (
            Period.WEEK,
            utc(2027, 1, 1),
            PeriodWindow("2026-W53", utc(2026, 12, 28), utc(2027, 1, 4)),
        ),
        (
            Period.WEEK,
            utc(2027, 1, 4),
            PeriodWindow("2027-W01", utc(2027, 1, 4), utc(2027, 1, 11)),
        ),
        # ...and ISO week 1 of 2025 starts in December 2024.
        (
            Period.WEEK,
            utc(2024, 12, 30, 8),
            PeriodWindow("2025-W01", utc(2024, 12, 30), utc(2025, 1, 6)),
        ),
        (
            Period.WEEK,
            utc(2024, 12, 29, 23, 59, 59),
            PeriodWindow("2024-W52", utc(2024, 12, 23), utc(2024, 12, 30)),
        ),
        (
            Period.MONTH,
            utc(2026, 11, 20, 15, 30),
            PeriodWindow("2026-11", utc(2026, 11, 1), utc(2026, 12, 1)),
        ),
        (
            Period.MONTH,
            utc(2026, 12, 31, 23, 59, 59, 999999),
            PeriodWindow("2026-12", utc(2026, 12, 1), utc(2027, 1, 1)),
        ),
        (Period.MONTH, utc(2027, 1, 1), PeriodWindow("2027-01", utc(2027, 1, 1), utc(2027, 2, 1))),
        (
            Period.MONTH,
            utc(2028, 2, 29, 23, 59, 59),
            PeriodWindow("2028-02", utc(2028, 2, 1), utc(2028, 3, 1)),
        ),
        (
            Period.MONTH,
            utc(2027, 2, 28, 23, 59, 59),
            PeriodWindow("2027-02", utc(2027, 2, 1), utc(2027, 3, 1)),
        ),
    ],
)
def test_period_window(period: Period, now: datetime, expected: PeriodWindow) -> None:
    assert period_window(period, now) == expected


def test_period_is_measured_in_utc_whatever_the_input_zone() -> None:
    tokyo = timezone(timedelta(hours=9))
    # 08:00 on Monday in Tokyo is still Sunday 23:00 UTC.
    now = datetime(2026, 11, 23, 8, 0, tzinfo=tokyo)
    assert period_window(Period.DAY, now).key == "2026-11-22"
    assert period_window(Period.WEEK, now).key == "2026-W47"
    window = period_window(Period.MONTH, datetime(2026, 12, 1, 3, 0, tzinfo=tokyo))
    assert window.key == "2026-11"
    assert window.end == utc(2026, 12, 1)
    assert window.end.utcoffset() == timedelta(0)


@pytest.mark.parametrize("period", list(Period))
def test_windows_tile_time_without_gaps(period: Period) -> None:
    """Every instant lies in exactly one window, and each window ends where the next begins."""
    now = utc(2024, 12, 1, 0, 0, 0, 1)
    seen: set[str] = set()
    while now < utc(2029, 1, 15):
        window = period_window(period, now)
        assert window.start <= now < window.end
        assert period_window(period, window.start) == window
        assert period_window(period, window.end - timedelta(microseconds=1)) == window
        following = period_window(period, window.end)
        assert following.start == window.end
        assert following.key > window.key
        seen.add(window.key)
        now += timedelta(hours=17)
    expected = {Period.DAY: 1506, Period.WEEK: 216, Period.MONTH: 50}[period]
    assert len(seen) == expected


@pytest.mark.parametrize("period", list(Period))
def test_naive_datetime_refused(period: Period) -> None:
    with pytest.raises(ValueError, match="aware"):
        period_window(period, datetime(2026, 11, 20, 12, 0))  # noqa: DTZ001


def test_period_spelled_as_in_config() -> None:
    assert [Period(name) for name in ("day", "week", "month")] == [
        Period.DAY,
        Period.WEEK,
        Period.MONTH,
    ]


@pytest.mark.parametrize(
    ("resolution", "duration", "credits"),
    [
        ("480p", 5, 1),
        ("480p", 10, 2),
        ("720p", 5, 2),
        ("720p", 10, 4),
        ("1080p", 5, 5),
        ("1080p", 10, 10),
    ],
)
def test_default_costs(resolution: str, duration: int, credits: int) -> None:
    assert job_cost(DEFAULT_COSTS, resolution, duration) == credits


def test_custom_cost_table() -> None:
    assert job_cost({"720p": {5: 3}}, "720p", 5) == 3


def test_unknown_resolution_names_what_is_configured() -> None:
    with pytest.raises(ValueError, match="2160p 5s") as info:
        job_cost(DEFAULT_COSTS, "2160p", 5)
    assert "480p 5s" in str(info.value)
    assert "1080p 10s" in str(info.value)


def test_unknown_duration_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="720p 7s"):
        job_cost(DEFAULT_COSTS, "720p", 7)
    with pytest.raises(ValueError, match="none"):
        job_cost({}, "480p", 5)


def test_negative_limits_refused() -> None:
    assert Limits(0, 0, 0, 0).member_credits == 0
    with pytest.raises(ValueError, match="server_concurrent"):
        Limits(member_credits=10, server_credits=100, member_concurrent=1, server_concurrent=-1)
