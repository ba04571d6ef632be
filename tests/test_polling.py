from bot.polling import PollPlan, expected_run_seconds, next_poll_delay

PLAN = PollPlan(floor=1.0, ceiling=15.0)


def delay(
    state: str, position: int | None = None, elapsed: float = 0.0, expected: float = 60.0
) -> float:
    return next_poll_delay(
        state=state,
        queue_position=position,
        seconds_in_state=elapsed,
        expected_run_seconds=expected,
        plan=PLAN,
    )


def test_deep_in_the_queue_polls_rarely_near_the_front_often() -> None:
    assert delay("queued", 30) == PLAN.ceiling
    assert delay("queued", 3) > delay("queued", 1)
    assert delay("queued", 1) <= 2.0


def test_running_is_sparse_early_and_dense_near_the_expected_finish() -> None:
    early = delay("running", elapsed=0.0, expected=60.0)
    late = delay("running", elapsed=58.0, expected=60.0)
    assert early >= 10.0
    assert late == PLAN.floor
    # Never sleeps past the expected finish.
    for elapsed in range(0, 60, 3):
        assert elapsed + delay("running", elapsed=elapsed, expected=60.0) <= 60.0 + PLAN.floor


def test_overdue_jobs_back_off_a_little() -> None:
    assert PLAN.floor < delay("running", elapsed=200.0, expected=60.0) <= PLAN.ceiling


def test_expected_run_seconds_is_the_median_of_history() -> None:
    assert expected_run_seconds([], 5) == 60.0
    assert expected_run_seconds([], 10) == 90.0
    assert expected_run_seconds([30.0, 50.0, 40.0], 5) == 40.0
    assert expected_run_seconds([30.0, 50.0, 40.0, 60.0], 5) == 45.0
