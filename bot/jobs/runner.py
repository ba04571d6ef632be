"""The job runner: starts, cancels and resumes jobs, and tells people how they are doing.

The engine knows nothing of Discord. A cog gives each job a `JobNotifier` that shows progress
and delivers the video, and registers one `ModeratorDesk` for the moderators; the runner
tells them about every change and settles credits itself (through the state machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import aiohttp

from bot import logs
from bot.config import Config
from bot.i18n import N_
from bot.jobs.machine import JobMachine
from bot.jobs.notify import CancelResult, JobNotifier, ModeratorDesk
from bot.jobs.shared_slots import SharedSlots
from bot.jobs.slots import FairQueue, SlotQueue
from bot.models import JobRecord, JobState
from bot.ops import metrics
from bot.runcomfy.client import RunComfyClient
from bot.runcomfy.errors import RunComfyError
from bot.store.coordination import ProviderSlots
from bot.store.protocol import Store
from bot.tasks import TaskSet

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
SETTLED_MEMORY = 4096


def utcnow() -> datetime:
    return datetime.now(UTC)


SHOW_ENDINGS_FOR = timedelta(days=1)
"""How long after a job settled a start still shows an ending its status message missed."""


class JobRunner:
    """Runs every job of the process; one instance per bot."""

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

    # -- what the face reads ---------------------------------------------------------------

    async def job(self, job_id: int) -> JobRecord | None:
        """The job as stored now, or None."""
        return await self._store.get_job(job_id)

    async def recent(self, guild_id: int, member_id: int, limit: int = 10) -> list[JobRecord]:
        """A member's latest jobs in a server, newest first."""
        return await self._store.recent_jobs(guild_id, member_id, limit=limit)

    def slot_position(self, job_id: int) -> int | None:
        """Where a job waits for a free provider slot (1 = next), None when not waiting."""
        return self._queue.position(job_id)

    async def expected_finish(self, job: JobRecord) -> datetime | None:
        """When a running job should be done, from past jobs with the same settings."""
        if job.state is not JobState.RUNNING or job.started_at is None:
            return None
        seconds = await self._machine.runs.expected(job.resolution, job.duration)
        return job.started_at + timedelta(seconds=seconds)

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

    # -- lifecycle -------------------------------------------------------------------------

    async def shown_at(self, job_id: int, message_id: int) -> None:
        """Remember the channel message that shows the job's status."""
        await self._store.set_status_message(job_id, message_id, now=self._clock())

    async def final_shown(self, job_id: int) -> None:
        """The settled job's status message shows its ending: no start needs to show it again."""
        try:
            await self._store.mark_final_shown(job_id, now=self._clock())
        except Exception:
            log.warning("job %d: could not record its ending as shown", job_id, exc_info=True)

    def watch(self, job: JobRecord, notifier: JobNotifier) -> None:
        """Show a job that is not running yet (waiting for a moderator) as it changes."""
        self._notifiers[job.id] = notifier

    def hold(self, job_id: int) -> None:
        """Keep the lease of a job accepted here while it is being shown, before it starts:
        however long the status message takes, no sweep runs it behind the member's back.
        :meth:`start`, :meth:`abandon` or :meth:`let_go` ends the hold."""
        self._held.add(job_id)

    def let_go(self, job_id: int) -> None:
        """Stop keeping a held job's lease: when it runs out, a sweep takes the job."""
        self._held.discard(job_id)

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

    async def resume(self, notifier_for: Callable[[JobRecord], JobNotifier]) -> int:
        """After a start: watch every request awaiting a moderator, take every job nobody
        holds, then keep the leases of this process's jobs and keep sweeping for jobs whose
        owner stopped answering. ``notifier_for`` makes each job's notifier.

        Returns how many jobs this first sweep took.
        """
        self._notifier_for = notifier_for
        await self._store.listen(self._heard)
        for request in await self._store.pending_approvals():
            self.watch(request.job, notifier_for(request.job))
        taken = await self.sweep()
        self._background = [
            self._tasks.create(self._keep_leases(), name="job-leases"),
            self._tasks.create(self._keep_sweeping(), name="job-sweeper"),
        ]
        return taken

    async def sweep(self) -> int:
        """Take and run the jobs whose lease ran out (their owner died, or their task did)."""
        if self._notifier_for is None or self._machine.closing:
            return 0
        taken = 0
        for job in await self._store.claimable_jobs(self._clock()):
            if job.id in self._running:
                continue
            log.info("taking over job %d (%s, owner %s)", job.id, job.state.value, job.owner)
            started = await self.start(job, self._notifier_for(job))
            if started:
                metrics.LEASE_TAKEOVERS.inc()
            taken += started
        await self._show_endings()
        return taken

    async def _show_endings(self) -> None:
        """Show again the endings of settled jobs their status message never showed (the
        process stopped before the edit, or Discord kept failing it)."""
        assert self._notifier_for is not None
        now = self._clock()
        for job in await self._store.unshown_endings(now - SHOW_ENDINGS_FOR):
            # A job that just ended here is still being shown by its own notifier.
            if job.finished_at is not None and job.finished_at > now - self._lease:
                continue
            log.info("job %d: showing its ending (%s) again", job.id, job.state.value)
            await self._notifier_for(job).job_changed(job)

    async def _keep_leases(self) -> None:
        """Renew this process's leases every third of a lease; stop jobs another process took."""
        while True:
            await asyncio.sleep(self._lease.total_seconds() / 3)
            try:
                mine = set(self._running) | self._held
                kept = await self._store.renew_leases(self.identity, mine, until=self.lease_until())
                for job_id in mine - kept:
                    job = await self._store.get_job(job_id)
                    # Not renewed because it just ended is fine; taken by another owner is not.
                    taken = job is not None and not job.state.is_terminal
                    if taken and job_id in self._running:
                        assert job is not None
                        log.warning("job %d: lease lost to %s; stopping here", job_id, job.owner)
                        await self._stop_task(job_id)
            except Exception:
                log.exception("renewing job leases failed")

    async def _keep_sweeping(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._sweep_every):
                    await self._sweep_now.wait()
            self._sweep_now.clear()
            try:
                await self.sweep()
                await self._prune_watched()
            except Exception:
                log.exception("sweeping for abandoned jobs failed")

    async def _prune_watched(self) -> None:
        """Stop watching requests decided elsewhere (another process ran the Approve)."""
        watched = [job_id for job_id in self._notifiers if job_id not in self._running]
        if not watched:
            return
        waiting = {request.job.id for request in await self._store.pending_approvals()}
        for job_id in watched:
            if job_id not in waiting and job_id not in self._running:
                self._notifiers.pop(job_id, None)

    # -- what other processes say ----------------------------------------------------------

    def _heard(self, topic: str, text: str) -> None:
        """A signal from a process on the database (this one included)."""
        if topic in ("slots", "resync") and isinstance(self._queue, SharedSlots):
            self._queue.wake()
        if topic in ("jobs", "resync"):
            self._sweep_now.set()
        if topic == "stop" and text.isdigit():
            self._tasks.create(self._stopped_elsewhere(int(text)), name=f"job-{text}-stop")

    async def _stopped_elsewhere(self, job_id: int) -> None:
        """A job was ended by a click another process received: stop running or showing it."""
        if job_id not in self._running:
            self._notifiers.pop(job_id, None)
            return
        job = await self._store.get_job(job_id)
        if job is None or job.state.is_terminal:
            log.info("job %d was ended elsewhere; stopping its run here", job_id)
            await self._stop_task(job_id)

    async def _tell_others(self, job_id: int) -> None:
        """Tell every process the job ended by a click here (its run, if elsewhere, stops)."""
        try:
            await self._store.send_signal("stop", str(job_id))
        except Exception as exc:
            # The run elsewhere still ends at its next look at the provider or the store.
            log.warning("job %d: could not tell the other processes it ended: %s", job_id, exc)

    def forget(self, job_id: int) -> None:
        """Stop showing a job this process watches but does not run (an expired request)."""
        if job_id not in self._running:
            self._notifiers.pop(job_id, None)
            self._shown_positions.pop(job_id, None)

    def _forget(self, job_id: int, _task: asyncio.Task[None]) -> None:
        self._running.pop(job_id, None)
        self._notifiers.pop(job_id, None)

    async def abandon(self, job: JobRecord, reason: str) -> None:
        """Release a job that never reached the provider (e.g. its status message failed)."""
        self._held.discard(job.id)
        if job.state is JobState.PENDING_APPROVAL:
            withdrawn = await self._store.withdraw_request(job.id, member_id=job.member_id)
            self._settled_here(withdrawn.job if withdrawn.changed else None)
            return
        if await self._store.finish_failed(
            job.id, JobState.FAILED, error=reason, now=self._clock()
        ):
            self._settled_here(replace(job, state=JobState.FAILED))

    async def close(self) -> None:
        """Stop gracefully: no new submits, a short grace for submits and posts under way, then
        every task stops and this process's leases are handed back, so the next start (or
        another process) takes the jobs at once."""
        self._machine.closing = True
        for task in self._background:
            task.cancel()
        await self._machine.calm(self._grace)
        held = [*self._running, *self._held]
        self._held.clear()
        await self._tasks.cancel_all()
        if isinstance(self._queue, SharedSlots):
            await self._queue.close()
        for job_id in held:
            with contextlib.suppress(Exception):
                await self._store.release_lease(job_id, owner=self.identity)

    async def cancel(
        self, job_id: int, *, actor_id: int, is_moderator: bool, reason: str | None = None
    ) -> CancelResult:
        """Cancel a job not sent yet or queued at the provider, for its requester or a
        moderator; releases its credits. Works whichever process runs the job: the ending
        goes through the store, and the other processes are told.

        ``reason`` is a moderator's word on denying a request that waits for them.
        """
        job = await self._store.get_job(job_id)
        if job is None:
            return CancelResult.UNKNOWN
        if job.state.is_terminal:
            return CancelResult.FINISHED
        if actor_id != job.member_id and not is_moderator:
            return CancelResult.NOT_ALLOWED
        who = N_("its requester") if actor_id == job.member_id else N_("a moderator")
        why = N_("Cancelled by {who}.").format(who=who)
        notifier = self._notifier_of(job)
        if job.state is JobState.PENDING_APPROVAL:
            if actor_id == job.member_id:
                await self._store.withdraw_request(job.id, member_id=actor_id)
            else:
                await self._store.deny_request(
                    job.guild_id,
                    job.id,
                    by=actor_id,
                    reason=reason or why,
                    now=self._clock(),
                )
            self._notifiers.pop(job.id, None)
            await self.notify(job.id, notifier)
            await self._tell_others(job.id)
            return CancelResult.CANCELLED
        return await self._call_off(job, why, notifier)

    async def call_off(self, job_id: int, why: str) -> bool:
        """Stop a job as a cancel would, though nobody asked (its status could not be shown
        anywhere); True when it ended, False when it is past cancelling (it runs on)."""
        job = await self._store.get_job(job_id)
        if job is None or job.state.is_terminal or job.state is JobState.PENDING_APPROVAL:
            return False
        result = await self._call_off(job, why, self._notifier_of(job))
        return result is CancelResult.CANCELLED

    async def _call_off(
        self, job: JobRecord, why: str, notifier: JobNotifier | None
    ) -> CancelResult:
        """Cancel a job not sent yet or queued at the provider; releases its credits."""
        if job.state is JobState.ACCEPTED and self._queue.is_waiting(job.id):
            # Still waiting here for a provider slot: nothing was sent, stop it locally.
            await self._stop_task(job.id)
            await self._machine.end(job.id, JobState.CANCELLED, why, notifier)
            return CancelResult.CANCELLED
        if job.state is JobState.ACCEPTED and job.id not in self._running:
            # Not sent, and not run here: another process holds it (or nobody yet). Of this
            # and its submit, exactly one happens.
            if await self._store.cancel_unsent(job.id, error=why, now=self._clock()):
                await self.notify(job.id, notifier)
                await self._tell_others(job.id)
                return CancelResult.CANCELLED
            current = await self._store.get_job(job.id)
            if current is None:
                return CancelResult.UNKNOWN
            return (
                CancelResult.FINISHED if current.state.is_terminal else CancelResult.NOT_CANCELLABLE
            )
        if job.state is not JobState.QUEUED or job.request_id is None:
            return CancelResult.NOT_CANCELLABLE
        try:
            outcome = await self._provider.cancel(self._machine.submission(job))
        except RunComfyError as exc:
            log.warning("job %d: cancel failed at the provider: %s", job.id, exc)
            return CancelResult.NOT_CANCELLABLE
        if outcome.value != "cancelled":
            return CancelResult.NOT_CANCELLABLE
        await self._stop_task(job.id)
        # Whatever process polls it: the provider cancelled it, so the click ends it.
        await self._machine.end(job.id, JobState.CANCELLED, why, notifier, owned=False)
        await self._tell_others(job.id)
        return CancelResult.CANCELLED

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
