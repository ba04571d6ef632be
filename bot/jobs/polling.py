"""When to ask the provider again: sparse while a result is far off, dense near it.

Pure functions, so the schedule is tested without a network and benchmarked offline
(`python -m bench polling` compares it with fixed-interval pollers; see BENCHMARKS.md).

While running, the finish is taken to lie somewhere in a window around the expected run time
(the median of past runs with the same settings). Before the window the poller closes in on
it in halving steps. Inside it, the interval follows the classic inspection schedule for a
finish time spread evenly over the window: proportional to the square root of the time left
in it. Early in the window most jobs are still running, so every poll is wasted for nearly
all of them and polls are spread out; near its end the few jobs left are about to finish and
polls come close together. Past the window the estimate was wrong and the poller backs off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Typical generation time when there is no history yet (hosts list about 60 s for Lite).
DEFAULT_RUN_SECONDS = {5: 60.0, 10: 90.0}
# Rough time one queued job ahead of us adds.
SECONDS_PER_QUEUED_JOB = 20.0
# At the front of the queue the job starts within about one slot; a start noticed late only
# shifts the running schedule a little, so this need not be dense.
FRONT_OF_QUEUE_SECONDS = 8.0
# Where the finish is expected, as fractions of the expected run time.
WINDOW_START = 0.45
WINDOW_END = 1.5
# Inside the window: SHAPE * sqrt(expected * seconds left in the window), at most DENSE_MAX
# of the expected run time (0.35 * sqrt(seconds left) and 2.2 s for a 60 s run): a finish is
# noticed within that, which leaves the fetch and the post the rest of 3 s.
SHAPE = 0.35 / math.sqrt(60.0)
DENSE_MAX = 2.2 / 60.0
# Before the window: never a step shorter than this share of the expected run time.
APPROACH_MIN = 4.0 / 60.0
# Past the window: one more floor interval for every quarter of the expected run time overdue.
OVERDUE_STEP = 0.25


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

    In the queue, wait in proportion to the jobs ahead. While running, close in on the window
    where the finish is expected, poll densest towards its end, and back off past it.
    """
    if state == "queued":
        if queue_position is None or queue_position <= 1:
            return _clamp(FRONT_OF_QUEUE_SECONDS, plan)
        return _clamp(queue_position * SECONDS_PER_QUEUED_JOB / 2, plan)
    if state == "running":
        expected = expected_run_seconds if expected_run_seconds else 60.0
        return _clamp(_running_delay(seconds_in_state, expected, plan.floor), plan)
    return _clamp(plan.floor * 2, plan)


def _running_delay(elapsed: float, expected: float, floor: float) -> float:
    start = WINDOW_START * expected
    end = WINDOW_END * expected
    if elapsed < start:
        # Halve the distance to the window, in steps no shorter than APPROACH_MIN.
        left = start - elapsed
        return min(left, max(APPROACH_MIN * expected, left / 2))
    if elapsed < end:
        return min(DENSE_MAX * expected, SHAPE * math.sqrt(expected * (end - elapsed)))
    return floor * (1 + (elapsed - end) / (OVERDUE_STEP * expected))


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
