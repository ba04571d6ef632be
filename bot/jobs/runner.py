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
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aiohttp

from bot.config import Config
from bot.jobs.machine import JobMachine
from bot.jobs.notify import CancelResult, JobNotifier, ModeratorDesk
from bot.jobs.polling import expected_run_seconds
from bot.jobs.slots import FairQueue
from bot.models import JobRecord, JobState
from bot.runcomfy.client import RunComfyClient
from bot.runcomfy.errors import RunComfyError
from bot.store.protocol import Store
from bot.tasks import TaskSet

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
SETTLED_MEMORY = 4096


def utcnow() -> datetime:
    return datetime.now(UTC)


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
        self._queue = FairQueue(config.runcomfy.max_concurrent_jobs, on_change=self._queue_changed)
        self._machine = JobMachine(
            config=config,
            store=store,
            provider=provider,
            http=http,
            queue=self._queue,
            clock=clock,
            notify=self.notify,
        )
        self._shown_positions: dict[int, int] = {}
        self._tasks = TaskSet()
        self._running: dict[int, asyncio.Task[None]] = {}
        self._notifiers: dict[int, JobNotifier] = {}
        # Jobs already reported to the desk, newest last; bounded, a job settles only once.
        self._settled: dict[int, None] = {}
        self.desk: ModeratorDesk | None = None
        """Where the moderators hear about settled jobs; set by the face when it loads."""

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
        history = await self._store.recent_run_seconds(job.resolution, job.duration)
        return job.started_at + timedelta(seconds=expected_run_seconds(history, job.duration))

    @property
    def active_jobs(self) -> int:
        """Jobs with a running task in this process."""
        return len(self._running)

    # -- lifecycle -------------------------------------------------------------------------

    async def shown_at(self, job_id: int, message_id: int) -> None:
        """Remember the channel message that shows the job's status."""
        await self._store.set_status_message(job_id, message_id, now=self._clock())

    def watch(self, job: JobRecord, notifier: JobNotifier) -> None:
        """Show a job that is not running yet (waiting for a moderator) as it changes."""
        self._notifiers[job.id] = notifier

    def start(self, job: JobRecord, notifier: JobNotifier) -> bool:
        """Run the job in the background from whatever state it is stored in.

        Idempotent: a job that already runs in this process keeps its one task (the newer
        notifier takes over showing it). Returns True when a task was started.
        """
        self._notifiers[job.id] = notifier
        if job.id in self._running:
            log.info("job %d already runs here; not starting it twice", job.id)
            return False
        task = self._tasks.create(self._machine.run(job.id, notifier), name=f"job-{job.id}")
        self._running[job.id] = task
        task.add_done_callback(functools.partial(self._forget, job.id))
        return True

    async def resume(
        self,
        runnable: Callable[[JobRecord], JobNotifier],
        waiting: Callable[[JobRecord], JobNotifier],
    ) -> int:
        """After a start: run every unfinished job and watch every request awaiting a moderator.

        ``runnable`` and ``waiting`` make each job's notifier. Returns how many jobs resumed.
        """
        for request in await self._store.pending_approvals():
            self.watch(request.job, waiting(request.job))
        resumed = 0
        for job in await self._store.unfinished_jobs():
            log.info("resuming job %d (%s)", job.id, job.state.value)
            resumed += self.start(job, runnable(job))
        return resumed

    def _forget(self, job_id: int, _task: asyncio.Task[None]) -> None:
        self._running.pop(job_id, None)
        self._notifiers.pop(job_id, None)

    async def abandon(self, job: JobRecord, reason: str) -> None:
        """Release a job that never reached the provider (e.g. its status message failed)."""
        if job.state is JobState.PENDING_APPROVAL:
            await self._store.withdraw_request(job.id, member_id=job.member_id)
            return
        await self._store.finish_failed(job.id, JobState.FAILED, error=reason, now=self._clock())

    async def close(self) -> None:
        """Stop every task of this process; the jobs stay stored and resume on the next start."""
        await self._tasks.cancel_all()

    async def cancel(self, job_id: int, *, actor_id: int, is_moderator: bool) -> CancelResult:
        """Cancel a queued job for its requester or a moderator; releases its credits."""
        job = await self._store.get_job(job_id)
        if job is None:
            return CancelResult.UNKNOWN
        if job.state.is_terminal:
            return CancelResult.FINISHED
        if actor_id != job.member_id and not is_moderator:
            return CancelResult.NOT_ALLOWED
        who = "its requester" if actor_id == job.member_id else "a moderator"
        if job.state is JobState.PENDING_APPROVAL:
            if actor_id == job.member_id:
                await self._store.withdraw_request(job.id, member_id=actor_id)
            else:
                await self._store.deny_request(
                    job.guild_id,
                    job.id,
                    by=actor_id,
                    reason=f"Cancelled by {who}.",
                    now=self._clock(),
                )
            await self.notify(job.id, self._notifiers.pop(job.id, None))
            return CancelResult.CANCELLED
        if job.state is JobState.ACCEPTED and self._queue.position(job.id) is not None:
            # Still waiting here for a provider slot: nothing was sent, stop it locally.
            # Take the notifier first: stopping the task forgets it.
            notifier = self._notifiers.get(job.id)
            await self._stop_task(job.id)
            await self._machine.end(job.id, JobState.CANCELLED, f"Cancelled by {who}.", notifier)
            return CancelResult.CANCELLED
        if job.state is not JobState.QUEUED or job.request_id is None:
            return CancelResult.NOT_CANCELLABLE
        try:
            outcome = await self._provider.cancel(self._machine.submission(job))
        except RunComfyError as exc:
            log.warning("job %d: cancel failed at the provider: %s", job.id, exc)
            return CancelResult.NOT_CANCELLABLE
        if outcome.value != "cancelled":
            return CancelResult.NOT_CANCELLABLE
        notifier = self._notifiers.get(job.id)
        await self._stop_task(job.id)
        await self._machine.end(job.id, JobState.CANCELLED, f"Cancelled by {who}.", notifier)
        return CancelResult.CANCELLED

    async def _stop_task(self, job_id: int) -> None:
        task = self._running.get(job_id)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- telling people --------------------------------------------------------------------

    async def notify(self, job_id: int, notifier: JobNotifier | None) -> None:
        """Show the job as stored now; a settled job also goes to the moderators' desk, once."""
        job = await self._store.get_job(job_id)
        if job is None:
            return
        if notifier is not None:
            try:
                await notifier.job_changed(job)
            except Exception:
                # Showing progress must never break the job itself.
                log.exception("job %d: status update failed", job_id)
        if job.state.is_terminal and self.desk is not None and job_id not in self._settled:
            self._settled[job_id] = None
            if len(self._settled) > SETTLED_MEMORY:
                del self._settled[next(iter(self._settled))]
            try:
                await self.desk.job_settled(job)
            except Exception:
                log.exception("job %d: the moderators' log entry failed", job_id)

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
