"""Retry rules as pure functions: which failures to retry and how long to wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from bot.runcomfy.errors import (
    ApiError,
    AuthError,
    DeadlineExceededError,
    InputRejectedError,
    NoBalanceError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnknownStateError,
    UnknownSubmissionError,
)
from bot.runcomfy.retry import MAX_RETRY_AFTER, parse_retry_after, retry_delay, should_retry

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def api(cls: type[ApiError], status: int) -> ApiError:
    return cls("boom", status=status)


@pytest.mark.parametrize(
    "exc",
    [
        TransportError("reset"),
        TransportError("refused", sent=False),
        api(RateLimitedError, 429),
        api(ServerError, 500),
        api(ServerError, 503),
        api(ServerError, 408),
    ],
)
def test_transient_failures_are_retried(exc: BaseException) -> None:
    assert should_retry(exc)


@pytest.mark.parametrize(
    "exc",
    [
        api(AuthError, 401),
        api(NoBalanceError, 402),
        api(InputRejectedError, 422),
        api(NotFoundError, 404),
        api(ApiError, 409),
        UnknownStateError("exploded"),
        UnknownSubmissionError("lost"),
        DeadlineExceededError("late"),
        ValueError("not ours"),
    ],
)
def test_permanent_failures_are_not_retried(exc: BaseException) -> None:
    assert not should_retry(exc)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("7", 7.0), (" 2.5 ", 2.5), ("0", 0.0), ("120", 120.0)],
)
def test_retry_after_in_seconds(value: str, expected: float) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_retry_after_as_http_date() -> None:
    later = format_datetime(NOW + timedelta(seconds=42), usegmt=True)
    assert parse_retry_after(later, NOW) == pytest.approx(42.0)


def test_retry_after_in_the_past_means_now() -> None:
    earlier = format_datetime(NOW - timedelta(minutes=5), usegmt=True)
    assert parse_retry_after(earlier, NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-3", "nan", "inf", "Sun, 99 Foo 20"])
def test_unusable_retry_after_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    highest = [retry_delay(n, None, base=1.0, cap=30.0, rand=lambda: 1.0) for n in range(8)]
    assert highest == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_jitter_keeps_at_least_half_the_backoff() -> None:
    lowest = [retry_delay(n, None, base=1.0, cap=30.0, rand=lambda: 0.0) for n in range(7)]
    assert lowest == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0]


def test_huge_attempt_numbers_stay_capped() -> None:
    assert retry_delay(10_000, None, cap=30.0, rand=lambda: 1.0) == 30.0


def test_retry_after_is_a_floor() -> None:
    assert retry_delay(0, 7.0, rand=lambda: 1.0) == 7.0


def test_short_retry_after_does_not_shorten_backoff() -> None:
    assert retry_delay(4, 0.5, rand=lambda: 1.0) == 16.0


def test_absurd_retry_after_is_capped() -> None:
    assert retry_delay(0, 86_400.0, rand=lambda: 0.0) == MAX_RETRY_AFTER
