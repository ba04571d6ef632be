"""Every metric the bot exports, defined once; the engine records into them where things happen.

The collectors live in a registry of their own, so ``/metrics`` shows only ``seedance_*``
names (the process's CPU and memory included, under the same prefix). Nothing here knows how
the numbers leave the process: :mod:`bot.ops.server` serves the registry when
``[metrics] port`` is set, and recording costs the same whether anyone scrapes or not.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.models import JobRecord, JobState

REGISTRY = CollectorRegistry(auto_describe=True)
"""The bot's metrics, and only them (no unprefixed default collectors)."""

ProcessCollector(namespace="seedance", registry=REGISTRY)

# -- jobs ------------------------------------------------------------------------------------

JOB_TRANSITIONS = Counter(
    "seedance_job_transitions",
    "Jobs that entered a state in this process (submitting, queued, running, delivering, "
    "unknown_submission, and the terminal ones).",
    ["state"],
    registry=REGISTRY,
)
JOBS_FINISHED = Counter(
    "seedance_jobs_finished",
    "Jobs settled in this process, by outcome: delivered, failed, cancelled, timed_out.",
    ["outcome"],
    registry=REGISTRY,
)
CREDITS = Counter(
    "seedance_credits",
    "Credits by what happened to them: reserved when a request is accepted, charged on "
    "delivery, released when a job ends without a video.",
    ["event"],
    registry=REGISTRY,
)
LEASE_TAKEOVERS = Counter(
    "seedance_lease_takeovers",
    "Jobs this process took over because their lease ran out (their owner stopped answering, "
    "or this process restarted).",
    registry=REGISTRY,
)
POLL_DELAY = Histogram(
    "seedance_poll_delay_seconds",
    "Pause before the next status poll of a job at the provider.",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0),
    registry=REGISTRY,
)

# -- the provider ----------------------------------------------------------------------------

PROVIDER_CALLS = Counter(
    "seedance_provider_calls",
    "Calls to the video service, by call (submit, status, result, cancel, probe, price).",
    ["call"],
    registry=REGISTRY,
)
PROVIDER_ERRORS = Counter(
    "seedance_provider_errors",
    "Failed calls to the video service, by call and kind (transport, auth, no_balance, "
    "input_rejected, not_found, rate_limited, server, api, unknown_submission).",
    ["call", "kind"],
    registry=REGISTRY,
)
PROVIDER_SECONDS = Histogram(
    "seedance_provider_call_seconds",
    "How long one call to the video service took, answer read.",
    ["call"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 90.0),
    registry=REGISTRY,
)
BREAKER_OPEN = Gauge(
    "seedance_provider_breaker_open",
    "1 while the circuit breaker refuses new requests because the video service is failing.",
    registry=REGISTRY,
)
BREAKER_TRIPS = Counter(
    "seedance_provider_breaker_trips",
    "Times the circuit breaker opened, by trouble (outage, account).",
    ["trouble"],
    registry=REGISTRY,
)

# -- Discord ---------------------------------------------------------------------------------

DISCORD_SECONDS = Histogram(
    "seedance_discord_request_seconds",
    "Discord REST calls by the first part of their route (channels, interactions, webhooks, "
    "applications, guilds, users, gateway, other), answer headers received.",
    ["route"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
DISCORD_RATE_LIMITED = Counter(
    "seedance_discord_rate_limited",
    "429 answers from Discord, by route and scope (user, global, shared).",
    ["route", "scope"],
    registry=REGISTRY,
)

# -- the process -----------------------------------------------------------------------------

LOOP_LAG = Histogram(
    "seedance_event_loop_lag_seconds",
    "How late a timer on the event loop fired: time the loop spent on other work.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
    registry=REGISTRY,
)


# -- recording helpers (one line at each place where something happens) -----------------------


def job_entered(state: JobState) -> None:
    """A job of this process moved to ``state``."""
    JOB_TRANSITIONS.labels(state=state.value).inc()


def job_settled(job: JobRecord) -> None:
    """A job ended for good here: count its outcome and what became of its credits."""
    job_entered(job.state)
    JOBS_FINISHED.labels(outcome=job.state.value).inc()
    event = "charged" if job.state is JobState.DELIVERED else "released"
    CREDITS.labels(event=event).inc(job.credits)


def job_accepted(job: JobRecord) -> None:
    """A request became a job (accepted, or waiting for a moderator) and reserved its credits."""
    job_entered(job.state)
    CREDITS.labels(event="reserved").inc(job.credits)


# -- live gauges: read from the engine's objects at scrape time ------------------------------


class LiveJobs(Protocol):
    """What a job runner tells about the jobs it holds right now."""

    @property
    def active_jobs(self) -> int: ...

    @property
    def slots_in_use(self) -> int: ...

    @property
    def waiting_for_slot(self) -> int: ...


class _LiveJobsCollector(Collector):
    """Sums the runners alive in this process (one in production; tests make several)."""

    def __init__(self) -> None:
        self._runners: weakref.WeakSet[LiveJobs] = weakref.WeakSet()

    def add(self, runner: LiveJobs) -> None:
        self._runners.add(runner)

    def collect(self) -> Iterator[Metric]:
        runners = list(self._runners)
        for name, text, value in (
            (
                "seedance_jobs_in_flight",
                "Jobs with a running task in this process.",
                sum(r.active_jobs for r in runners),
            ),
            (
                "seedance_provider_slots_in_use",
                "Jobs of this process holding one of the [runcomfy] max_concurrent_jobs slots.",
                sum(r.slots_in_use for r in runners),
            ),
            (
                "seedance_jobs_waiting_for_slot",
                "Jobs waiting in the fair local queue for a provider slot.",
                sum(r.waiting_for_slot for r in runners),
            ),
        ):
            yield GaugeMetricFamily(name, text, value=value)


_LIVE_JOBS = _LiveJobsCollector()
REGISTRY.register(_LIVE_JOBS)


def watch_jobs(runner: LiveJobs) -> None:
    """Report the runner's live job counts for as long as it exists."""
    _LIVE_JOBS.add(runner)


def _kind(exc: BaseException) -> str:
    """``NoBalanceError`` -> ``no_balance``: the error's class, as a label."""
    name = type(exc).__name__.removesuffix("Error") or "error"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def provider_called(call: str, seconds: float, error: BaseException | None = None) -> None:
    """One HTTP call to the video service went out (and failed on the way when ``error``)."""
    PROVIDER_CALLS.labels(call=call).inc()
    PROVIDER_SECONDS.labels(call=call).observe(seconds)
    if error is not None:
        provider_error(call, error)


def provider_error(call: str, error: BaseException) -> None:
    """A call's answer meant an error (a refusal, an outage, an answer we cannot read)."""
    PROVIDER_ERRORS.labels(call=call, kind=_kind(error)).inc()
