"""Jobs whose run went wrong: a crash classified by where the job stands, and a submit
whose outcome is unknown (never sent again, its credits held until the deadline)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from bot.i18n import N_
from bot.jobs.machine_core import MachineCore
from bot.jobs.notify import JobNotifier
from bot.jobs.words import (
    CRASHED_AGAIN,
    CRASHED_BEFORE_SUBMIT,
    UNCONFIRMED,
)
from bot.models import JobRecord, JobState
from bot.ops import metrics

log = logging.getLogger(__name__)


class EndingsMixin(MachineCore):
    """Crashes and unknown submissions, for `bot.jobs.machine.JobMachine`."""

    async def _crashed(self, job_id: int, notifier: JobNotifier | None, exc: Exception) -> None:
        """Classify a crash by where the job stands: end it, or hand it back to be retried."""
        try:
            job = await self._store.get_job(job_id)
            if job is None or job.state.is_terminal:
                return
            log.error(
                "job %d (request %s) ran into an error in state %s",
                job_id,
                job.request_id,
                job.state.value,
                exc_info=exc,
            )
            if job.state is JobState.ACCEPTED:
                # Nothing reached the provider: end it, nothing is charged.
                await self.end(job_id, JobState.FAILED, CRASHED_BEFORE_SUBMIT, notifier)
                return
            if job.state is JobState.SUBMITTING:
                # The submit may have been sent: never send it again.
                await self._store.mark_unknown_submission(
                    job_id, error=UNCONFIRMED, now=self._clock(), owner=self.owner
                )
            backoff = min(60.0, 2.0 ** (job.attempts + 1))
            retry_at = self._clock() + timedelta(seconds=backoff)
            attempts = await self._store.record_crash(
                job_id, owner=self.owner, retry_at=retry_at, now=self._clock()
            )
            if attempts >= self._config.jobs.max_attempts:
                reason = (
                    N_("{reason} (request {request_id})").format(
                        reason=CRASHED_AGAIN, request_id=job.request_id
                    )
                    if job.request_id
                    else CRASHED_AGAIN
                )
                await self.end(job_id, JobState.FAILED, reason, notifier, owned=False)
            elif attempts:
                log.warning("job %d: handed back, retried in %.0f s", job_id, backoff)
        except Exception:
            # The store itself fails: the lease runs out and a sweep takes the job again.
            log.exception("job %d: the backstop could not settle it", job_id)

    async def _unknown_submission(
        self,
        job: JobRecord,
        what: str,
        notifier: JobNotifier | None,
        deadline: float | None = None,
    ) -> None:
        minutes = round(self._config.runcomfy.job_deadline / 60)
        await self._store.mark_unknown_submission(
            job.id,
            error=N_(
                "{what} It is not sent again, so you cannot be charged twice; "
                "the credits are held for up to {minutes} minutes in case it ran, then released."
            ).format(what=what, minutes=minutes),
            now=self._clock(),
            owner=self.owner,
        )
        metrics.job_entered(JobState.UNKNOWN_SUBMISSION)
        await self._notify(job.id, notifier)
        await self._hold_until_deadline(job, deadline or self._deadline(job), notifier)

    async def _hold_until_deadline(
        self, job: JobRecord, deadline: float, notifier: JobNotifier | None
    ) -> None:
        await asyncio.sleep(max(0.0, deadline - asyncio.get_running_loop().time()))
        await self.end(
            job.id,
            JobState.FAILED,
            N_("The video service never confirmed this job. Your credits were released."),
            notifier,
        )
