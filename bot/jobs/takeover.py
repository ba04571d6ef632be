"""Jobs across processes: take over the jobs of a process that stopped answering, keep this
process's leases, show endings a status message missed, and hear what other processes say."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta

from bot.jobs.notify import JobNotifier
from bot.jobs.runner_core import RunnerCore
from bot.jobs.shared_slots import SharedSlots
from bot.models import JobRecord
from bot.ops import metrics

log = logging.getLogger(__name__)

SHOW_ENDINGS_FOR = timedelta(days=1)
"""How long after a job settled a start still shows an ending its status message missed."""


class TakeoverMixin(RunnerCore):
    """Sweeps, leases and signals of `bot.jobs.runner.JobRunner`."""

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
