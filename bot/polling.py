"""When to ask the provider again: sparse while a result is far off, dense near it.

Pure functions, so the schedule is tested without a network and benchmarked offline.
"""

from __future__ import annotations

from dataclasses import dataclass

# Typical generation time when there is no history yet (hosts list about 60 s for Lite).
DEFAULT_RUN_SECONDS = {5: 60.0, 10: 90.0}
# Rough time one queued job ahead of us adds.
SECONDS_PER_QUEUED_JOB = 20.0


@dataclass(frozen=True)
class PollPlan:
    """Bounds for the schedule; `floor` is the densest polling allowed."""

    floor: float = 1.0
    ceiling: float = 15.0


def next_poll_delay(
    *,
    state: str,
    queue_position: int | None,
    seconds_in_state: float,
    expected_run_seconds: float | None,
    plan: PollPlan,
) -> float:
    """Seconds to wait before the next poll.

    In the queue, wait in proportion to the jobs ahead. While running, sleep through most of
    the expected generation time and poll at the floor rate around the expected finish.
    """
    if state == "queued":
        if queue_position is None or queue_position <= 1:
            return _clamp(plan.floor * 2, plan)
        return _clamp(queue_position * SECONDS_PER_QUEUED_JOB / 4, plan)
    if state == "running":
        expected = expected_run_seconds if expected_run_seconds else 60.0
        remaining = expected - seconds_in_state
        if remaining > plan.floor * 4:
            # Far from the expected finish: cover half of what is left, never overshooting it.
            return _clamp(remaining / 2, plan)
        if remaining > -expected * 0.5:
            return plan.floor
        # Overdue: back off gently, the estimate was wrong.
        return _clamp(plan.floor * 3, plan)
    return _clamp(plan.floor * 2, plan)


def _clamp(value: float, plan: PollPlan) -> float:
    return max(plan.floor, min(plan.ceiling, value))


def expected_run_seconds(history: list[float], duration: int) -> float:
    """The median of recent run times for this setting, or a typical figure without history."""
    if not history:
        return DEFAULT_RUN_SECONDS.get(duration, 60.0)
    ordered = sorted(history)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2
