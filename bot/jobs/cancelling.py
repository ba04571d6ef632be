"""Ending a job before the provider made it: a member's or moderator's Cancel, a job called
off because it cannot be shown, one abandoned before it started. Credits are released."""

from __future__ import annotations

import logging
from dataclasses import replace

from bot.i18n import N_
from bot.jobs.notify import CancelResult, JobNotifier
from bot.jobs.runner_core import RunnerCore
from bot.models import JobRecord, JobState
from bot.runcomfy.errors import RunComfyError

log = logging.getLogger(__name__)


class CancelMixin(RunnerCore):
    """Cancelling, for `bot.jobs.runner.JobRunner`."""

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

    async def channel_gone(self, guild_id: int, channel_id: int) -> int:
        """A channel (or thread) was deleted: call off its jobs nothing was spent on yet
        (waiting for a slot, or in the provider's queue); the rest run on, and their end
        reaches the member by DM. How many were called off."""
        why = N_("The channel was deleted.")
        stopped = 0
        for job in await self._store.open_jobs_in(guild_id, channel_id):
            if await self.call_off(job.id, why):
                stopped += 1
        return stopped

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
