from bot.jobs.breaker import CircuitBreaker, Trip, Trouble, classify
from bot.runcomfy.errors import (
    AuthError,
    InputRejectedError,
    NoBalanceError,
    ServerError,
    TransportError,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def server_error() -> ServerError:
    return ServerError("boom", status=503)


def test_a_run_of_outage_faults_opens_it_and_a_success_resets_the_count() -> None:
    trips: list[Trip] = []
    breaker = CircuitBreaker(threshold=3, cooldown=10, clock=Clock(), on_trip=trips.append)
    breaker.observe(server_error())
    breaker.observe(server_error())
    breaker.observe(None)
    breaker.observe(server_error())
    breaker.observe(TransportError("reset"))
    assert breaker.trouble is None
    breaker.observe(server_error())
    assert breaker.trouble is Trouble.OUTAGE
    assert [t.trouble for t in trips] == [Trouble.OUTAGE]


def test_an_account_fault_opens_it_at_once_and_is_announced_once() -> None:
    trips: list[Trip] = []
    breaker = CircuitBreaker(threshold=5, cooldown=10, clock=Clock(), on_trip=trips.append)
    breaker.observe(NoBalanceError("no balance", status=402))
    breaker.observe(AuthError("bad key", status=401))
    assert breaker.trouble is Trouble.ACCOUNT
    assert len(trips) == 1


def test_job_specific_errors_do_not_count() -> None:
    breaker = CircuitBreaker(threshold=1, cooldown=10, clock=Clock())
    breaker.observe(InputRejectedError("bad image", status=422))
    assert breaker.trouble is None
    assert classify(InputRejectedError("x", status=400)) is None


def test_a_probe_is_due_only_after_the_cooldown_and_failures_restart_it() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown=10, clock=clock)
    breaker.observe(server_error())
    assert not breaker.probe_due()
    clock.now = 10
    assert breaker.probe_due()
    breaker.observe(server_error())  # the probe failed
    assert not breaker.probe_due()
    clock.now = 20
    breaker.observe(None)  # the next probe succeeded
    assert breaker.trouble is None and not breaker.probe_due()
