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


def test_processes_share_a_trip_and_the_recovery_each_telling_its_own_moderators() -> None:
    """Two processes' breakers wired as the app wires them: what one sees, the other follows,
    announcing it to its own servers once and never echoing it back."""
    told: dict[str, list[Trip]] = {"a": [], "b": []}
    shared: dict[str, list[Trip | None]] = {"a": [], "b": []}
    clock = Clock()
    a = CircuitBreaker(
        threshold=2, cooldown=10, clock=clock, on_trip=told["a"].append, share=shared["a"].append
    )
    b = CircuitBreaker(
        threshold=2, cooldown=10, clock=clock, on_trip=told["b"].append, share=shared["b"].append
    )
    a.observe(server_error())
    a.observe(server_error())
    assert a.trouble is Trouble.OUTAGE and b.trouble is None
    [trip] = shared["a"]
    assert trip is not None
    b.heard(trip)
    assert b.trouble is Trouble.OUTAGE
    assert (len(told["a"]), len(told["b"]), shared["b"]) == (1, 1, [])
    # Hearing it again (another process tripped too) changes nothing and tells nobody.
    b.heard(trip)
    assert len(told["b"]) == 1

    # b's probe after the cool-down succeeds: it tells the others, and a takes jobs again.
    clock.now = 10
    assert b.probe_due()
    b.observe(None)
    assert shared["b"] == [None]
    a.heard(None)
    assert a.trouble is None and b.trouble is None
    assert shared["a"] == [trip]
