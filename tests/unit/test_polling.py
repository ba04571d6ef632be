from bot.jobs.polling import PollPlan, expected_run_seconds, next_poll_delay

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


def polls_while_running(run_seconds: float, expected: float) -> list[float]:
    """When the runner would poll a job that runs `run_seconds`, from the start of running."""
    at = [0.0]
    while at[-1] < run_seconds:
        at.append(at[-1] + delay("running", elapsed=at[-1], expected=expected))
    return at


def test_deep_in_the_queue_polls_rarely_near_the_front_more_often() -> None:
    assert delay("queued", 30) == PLAN.ceiling
    assert delay("queued", 3) > delay("queued", 1)
    assert PLAN.floor < delay("queued", 1) < PLAN.ceiling


def test_running_is_sparse_early_and_densest_at_the_end_of_the_expected_window() -> None:
    early = delay("running", elapsed=0.0, expected=60.0)
    in_window = [delay("running", elapsed=t, expected=60.0) for t in range(27, 90, 3)]
    assert early >= 10.0
    assert max(in_window) <= 3.0
    # The closer to the window's end, the closer together the polls.
    assert in_window == sorted(in_window, reverse=True)
    assert delay("running", elapsed=89.5, expected=60.0) == PLAN.floor


def test_nothing_is_polled_before_the_expected_window_for_nothing() -> None:
    # Far from the expected finish only a handful of polls; none lands past the window start.
    polls = polls_while_running(27.0, expected=60.0)
    assert len(polls) <= 5
    assert polls[-1] == 27.0


def test_a_job_finishing_in_the_window_is_noticed_within_three_seconds() -> None:
    for finish in (27.5, 40.0, 61.0, 75.3, 89.9):
        polls = polls_while_running(finish, expected=60.0)
        assert polls[-1] - finish <= 3.0


def test_a_finish_anywhere_in_the_window_is_noticed_soon_enough_to_post_within_three_seconds() -> (
    None
):
    # At most 2.2 s for a 60 s job, leaving the fetch and the post most of a second.
    for tenth in range(630):
        finish = 27.0 + tenth / 10
        polls = polls_while_running(finish, expected=60.0)
        assert polls[-1] - finish <= 2.2 + 1e-9, finish


def test_the_schedule_scales_with_the_expected_run_time() -> None:
    # Ten times faster jobs, with ten times tighter bounds: the same schedule, ten times faster.
    long = [delay("running", elapsed=float(t), expected=60.0) for t in range(0, 90, 5)]
    plan = PollPlan(floor=0.1, ceiling=1.5)
    scaled = [
        next_poll_delay(
            state="running",
            queue_position=None,
            seconds_in_state=t * 0.1,
            expected_run_seconds=6.0,
            plan=plan,
        )
        for t in range(0, 90, 5)
    ]
    assert [round(s * 10, 6) for s in scaled] == [round(x, 6) for x in long]


def test_overdue_jobs_back_off_a_little() -> None:
    assert PLAN.floor < delay("running", elapsed=200.0, expected=60.0) <= PLAN.ceiling
    assert delay("running", elapsed=95.0, expected=60.0) < delay("running", elapsed=150.0)


def test_expected_run_seconds_is_the_median_of_history() -> None:
    assert expected_run_seconds([], 5) == 60.0
    assert expected_run_seconds([], 10) == 90.0
    assert expected_run_seconds([30.0, 50.0, 40.0], 5) == 40.0
    assert expected_run_seconds([30.0, 50.0, 40.0, 60.0], 5) == 45.0
