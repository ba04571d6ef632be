"""What the runner's parts share: the jobs running in this process, their notifiers, the
state machine and the provider's line; starting one job, and telling people how it is doing."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aiohttp

from bot import logs
from bot.config import Config
from bot.jobs.machine import JobMachine
from bot.jobs.notify import JobNotifier, ModeratorDesk
from bot.jobs.shared_slots import SharedSlots
from bot.jobs.slots import FairQueue, SlotQueue
from bot.models import JobRecord
from bot.ops import metrics
from bot.runcomfy.client import RunComfyClient
from bot.store.coordination import ProviderSlots
from bot.store.protocol import Store
from bot.tasks import TaskSet

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
SETTLED_MEMORY = 4096


def utcnow() -> datetime:
    return datetime.now(UTC)


class RunnerCore:
    """The state every part of the runner works on; see `bot.jobs.runner.JobRunner`."""

    def __init__(
        self,
        *,
        config: Config,
        store: Store,
        provider: RunComfyClient,
        http: aiohttp.ClientSession,
        clock: Clock = utcnow,
    ) -> None:
        self._store = store
        self._provider = provider
        self._clock = clock
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        """This process, as the owner of the jobs it runs."""
        self._lease = timedelta(seconds=config.jobs.lease_seconds)
        self._grace = config.jobs.shutdown_grace
        # A dead process's jobs are taken within a lease plus one poll (SPEC).
        self._sweep_every = min(config.jobs.lease_seconds / 2, config.runcomfy.poll_interval)
        self._sweep_now = asyncio.Event()
        cap = config.runcomfy.max_concurrent_jobs
        # One process per SQLite file keeps the line in memory; on PostgreSQL the cap and
        # the line hold across every process on the database.
        self._queue: SlotQueue = (
            SharedSlots(
                store, capacity=cap, owner=self.identity, clock=clock, on_change=self._queue_changed
            )
            if isinstance(store, ProviderSlots)
            else FairQueue(cap, on_change=self._queue_changed)
        )
        self._machine = JobMachine(
            config=config,
            store=store,
            provider=provider,
            http=http,
            queue=self._queue,
            clock=clock,
            notify=self.notify,
            owner=self.identity,
        )
        self._notifier_for: Callable[[JobRecord], JobNotifier] | None = None
        self._background: list[asyncio.Task[None]] = []
        self._shown_positions: dict[int, int] = {}
        self._tasks = TaskSet()
        self._running: dict[int, asyncio.Task[None]] = {}
        self._held: set[int] = set()
        """Jobs accepted here and not started yet: their leases are kept all the same."""
        self._notifiers: dict[int, JobNotifier] = {}
        # Jobs seen settled here (counted, told to the desk), newest last; bounded (settled once).
        self._settled: dict[int, None] = {}
        self.desk: ModeratorDesk | None = None
        """Where the moderators hear about settled jobs; set by the face when it loads."""
        metrics.watch_jobs(self)

    @property
    def active_jobs(self) -> int:
        """Jobs with a running task in this process."""
        return len(self._running)

    @property
    def slots_in_use(self) -> int:
        """Jobs of this process holding a provider slot (summed over processes: all of them)."""
        return self._queue.held

    @property
    def waiting_for_slot(self) -> int:
        """Jobs waiting in the fair queue for a provider slot."""
        return self._queue.waiting

    def watch(self, job: JobRecord, notifier: JobNotifier) -> None:
        """Show a job that is not running yet (waiting for a moderator) as it changes."""
        self._notifiers[job.id] = notifier

    def lease_until(self) -> datetime:
        """Until when a lease taken now lasts."""
        return self._clock() + self._lease

    async def start(self, job: JobRecord, notifier: JobNotifier) -> bool:
        """Take the job's lease and run it in the background from whatever state it is in.

        Idempotent: a job that already runs in this process keeps its one task (the newer
        notifier takes over showing it), and a job another live process holds is left to
        it. Returns True when a task was started.
        """
        self._held.discard(job.id)
        if job.id in self._running:
            self._notifiers[job.id] = notifier
            log.info("job %d already runs here; not starting it twice", job.id)
            return False
        if self._machine.closing:
            return False
        claimed = await self._store.claim_job(
            job.id, owner=self.identity, until=self.lease_until(), now=self._clock()
        )
        if claimed is None or job.id in self._running:
            return False
        self._notifiers[job.id] = notifier
        task = self._tasks.create(self._run(claimed, notifier), name=f"job-{job.id}")
        self._running[job.id] = task
        task.add_done_callback(functools.partial(self._forget, job.id))
        return True

    async def _run(self, job: JobRecord, notifier: JobNotifier) -> None:
        # Every line this task logs names the job (the task has its own copy of the context).
        logs.bind(job_id=job.id, guild_id=job.guild_id, request_id=job.request_id)
        await self._machine.run(job.id, notifier, job)

    def _forget(self, job_id: int, _task: asyncio.Task[None]) -> None:
        self._running.pop(job_id, None)
        self._notifiers.pop(job_id, None)

    def _notifier_of(self, job: JobRecord) -> JobNotifier | None:
        """How this process shows the job: its own notifier, or a new one for a job that
        runs (or waits) in another process. Take it before stopping a task: that forgets it."""
        notifier = self._notifiers.get(job.id)
        if notifier is None and self._notifier_for is not None:
            notifier = self._notifier_for(job)
        return notifier

    async def _stop_task(self, job_id: int) -> None:
        task = self._running.get(job_id)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _tell_others(self, job_id: int) -> None:
        """Tell every process the job ended by a click here (its run, if elsewhere, stops)."""
        try:
            await self._store.send_signal("stop", str(job_id))
        except Exception as exc:
            # The run elsewhere still ends at its next look at the provider or the store.
            log.warning("job %d: could not tell the other processes it ended: %s", job_id, exc)

    # -- telling people --------------------------------------------------------------------

    async def notify(
        self, job_id: int, notifier: JobNotifier | None, job: JobRecord | None = None
    ) -> None:
        """Show the job as stored now (``job``: as just written); a settled job also goes to
        the moderators' desk, once."""
        if job is None:
            job = await self._store.get_job(job_id)
        if job is None:
            return
        if notifier is not None:
            try:
                await notifier.job_changed(job)
            except Exception:
                # Showing progress must never break the job itself.
                log.exception("job %d: status update failed", job_id)
        if job.state.is_terminal and self._settled_here(job) and self.desk is not None:
            try:
                await self.desk.job_settled(job)
            except Exception:
                log.exception("job %d: the moderators' log entry failed", job_id)

    def _settled_here(self, job: JobRecord | None) -> bool:
        """Count a job this process saw settle, once; False when it was counted already."""
        if job is None or job.id in self._settled:
            return False
        self._settled[job.id] = None
        if len(self._settled) > SETTLED_MEMORY:
            del self._settled[next(iter(self._settled))]
        metrics.job_settled(job)
        return True

    def _queue_changed(self) -> None:
        positions = self._queue.positions()
        for job_id, position in positions.items():
            if self._shown_positions.get(job_id) != position:
                self._shown_positions[job_id] = position
                notifier = self._notifiers.get(job_id)
                self._tasks.create(self.notify(job_id, notifier), name=f"job-{job_id}-position")
        for job_id in list(self._shown_positions):
            if job_id not in positions:
                del self._shown_positions[job_id]
