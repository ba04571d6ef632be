"""The job runner: starts, cancels and resumes jobs, and tells people how they are doing.

The engine knows nothing of Discord. A cog gives each job a `JobNotifier` that shows progress
and delivers the video, and registers one `ModeratorDesk` for the moderators; the runner
tells them about every change and settles credits itself (through the state machine).

Its parts: `bot.jobs.runner_core` (the shared state, starting a job, telling people),
`bot.jobs.takeover` (leases, sweeps and other processes) and `bot.jobs.cancelling`.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta

from bot.jobs.cancelling import CancelMixin
from bot.jobs.runner_core import utcnow
from bot.jobs.shared_slots import SharedSlots
from bot.jobs.takeover import TakeoverMixin
from bot.models import JobRecord, JobState

__all__ = ["JobRunner", "utcnow"]

log = logging.getLogger(__name__)


class JobRunner(CancelMixin, TakeoverMixin):
    """Runs every job of the process; one instance per bot."""

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

    def hold(self, job_id: int) -> None:
        """Keep the lease of a job accepted here while it is being shown, before it starts:
        however long the status message takes, no sweep runs it behind the member's back.
        :meth:`start`, :meth:`abandon` or :meth:`let_go` ends the hold."""
        self._held.add(job_id)

    def let_go(self, job_id: int) -> None:
        """Stop keeping a held job's lease: when it runs out, a sweep takes the job."""
        self._held.discard(job_id)

    def forget(self, job_id: int) -> None:
        """Stop showing a job this process watches but does not run (an expired request)."""
        if job_id not in self._running:
            self._notifiers.pop(job_id, None)
            self._shown_positions.pop(job_id, None)

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
