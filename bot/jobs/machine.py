"""One job's life at the provider: wait for a slot, submit once, poll, fetch, hand over.

:class:`JobMachine` is the state machine; :class:`~bot.jobs.runner.JobRunner` owns the tasks it
runs in. Every step is stored before the next one starts, so a restart resumes from the store.
"""

from __future__ import annotations

import asyncio
import functools
import logging

from bot import logs
from bot.errors import JobNotFound
from bot.i18n import N_
from bot.jobs.endings import EndingsMixin
from bot.jobs.handover import HandoverMixin
from bot.jobs.notify import JobNotifier
from bot.jobs.polling import next_poll_delay
from bot.jobs.words import (
    LAST_LOOK_SECONDS,
    NO_SLOT,
    describe_provider_error,
)
from bot.models import JobRecord, JobState
from bot.ops import metrics
from bot.runcomfy.client import Submission, VideoInput
from bot.runcomfy.errors import (
    DeadlineExceededError,
    RunComfyError,
    UnknownSubmissionError,
)
from bot.runcomfy.states import Cancelled, Completed, Failed, InProgress, InQueue, ProviderState

log = logging.getLogger(__name__)


SUBMISSION_WRITES = 5
"""Tries at storing a submitted job's request id (about 7 s of a refusing database)."""


class JobMachine(HandoverMixin, EndingsMixin):
    """Drives jobs through their states; stateless apart from the shared provider queue."""

    async def run(
        self, job_id: int, notifier: JobNotifier | None, job: JobRecord | None = None
    ) -> None:
        """Run a job from whatever state it is stored in (``job``: as its claim just read
        it), until it ends or must wait.

        The backstop: an error nobody foresaw never leaves the job open without an owner.
        """
        try:
            await self._run_job(job_id, notifier, job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._crashed(job_id, notifier, exc)
        finally:
            self._queue.release(job_id)

    async def _run_job(
        self, job_id: int, notifier: JobNotifier | None, job: JobRecord | None
    ) -> None:
        if job is None:
            job = await self._store.get_job(job_id)
        if job is None or job.state.is_terminal or job.state is JobState.PENDING_APPROVAL:
            return
        deadline = self._deadline(job)
        if job.state is not JobState.ACCEPTED:
            # Already at the provider (a resumed job): it holds a slot without waiting.
            self._queue.admit_now(job.guild_id, job.member_id, job.id)
        if job.state is JobState.SUBMITTING:
            # We sent a submit but never stored its answer: it may or may not be running.
            await self._unknown_submission(
                job, N_("The bot stopped while sending this job."), notifier
            )
            return
        if job.state is JobState.UNKNOWN_SUBMISSION and job.request_id is None:
            await self._hold_until_deadline(job, deadline, notifier)
            return
        if job.state is JobState.DELIVERING and job.video_url:
            # The provider already finished it: deliver from the stored URL.
            await self._complete(job, job.video_url, notifier)
            return
        if job.state is JobState.ACCEPTED:
            # A global cap on jobs at the provider, shared fairly across servers and members.
            if self._queue.running >= self._queue.capacity:
                await self._notify(job.id, notifier)
            try:
                left = deadline - asyncio.get_running_loop().time()
                async with asyncio.timeout(max(0.0, left)):
                    await self._queue.acquire(job.guild_id, job.member_id, job.id)
            except TimeoutError:
                await self.end(job.id, JobState.TIMED_OUT, NO_SLOT, notifier)
                return
            submitted = await self._submit(job, deadline, notifier)
            if submitted is None:
                return
            job = submitted
        await self._poll(job, deadline, notifier)

    async def _submit(
        self, job: JobRecord, deadline: float, notifier: JobNotifier | None
    ) -> JobRecord | None:
        if self.closing or not await self._store.mark_submitting(
            job.id, self._clock(), owner=self.owner
        ):
            return None
        metrics.job_entered(JobState.SUBMITTING)
        request = VideoInput(
            prompt=job.prompt,
            first_frame_image_url=job.image_url,
            last_frame_image_url=job.last_frame_url,
            resolution=job.resolution,
            duration=job.duration,
        )
        with self._critical.hold(job.id):
            try:
                sub = await self._provider.submit(request)
            except UnknownSubmissionError as exc:
                log.warning("job %d: submit outcome unknown: %s", job.id, exc)
                if exc.request_id is None:
                    await self._unknown_submission(
                        job, N_("The video service did not confirm this job."), notifier, deadline
                    )
                    return None
                # The answer named the request: follow it rather than guess.
                sub = self._provider.submission_for(exc.request_id)
            except RunComfyError as exc:
                log.warning("job %d: submit refused: %r", job.id, exc)
                await self.end(job.id, JobState.FAILED, describe_provider_error(exc), notifier)
                return None
            logs.bind(request_id=sub.request_id)
            log.info("job %d submitted as request %s", job.id, sub.request_id)
            updated = await self._record_submission(job.id, sub)
            metrics.job_entered(updated.state)
        await self._notify(job.id, notifier, updated)
        return updated

    async def _record_submission(self, job_id: int, sub: Submission) -> JobRecord:
        """Store the request id the provider gave, trying the write again while the database
        refuses it: without it the paid video could never be fetched."""
        write = functools.partial(
            self._store.set_submission,
            job_id,
            request_id=sub.request_id,
            status_url=sub.status_url,
            result_url=sub.result_url,
            cancel_url=sub.cancel_url,
            now=self._clock(),
        )
        for attempt in range(SUBMISSION_WRITES - 1):
            try:
                return await write()
            except JobNotFound:
                raise  # the member was forgotten meanwhile: nothing to keep
            except Exception:
                log.exception(
                    "job %d: could not store request %s; trying again", job_id, sub.request_id
                )
                await asyncio.sleep(0.5 * 2**attempt)
        return await write()

    async def _poll(self, job: JobRecord, deadline: float, notifier: JobNotifier | None) -> None:
        loop = asyncio.get_running_loop()
        sub = self.submission(job)
        expected = await self.runs.expected(job.resolution, job.duration)
        shown: tuple[JobState, int | None] = (job.state, job.queue_position)
        since = loop.time()
        while True:
            try:
                state = await self._provider.poll(sub, deadline=deadline)
            except DeadlineExceededError:
                await self._time_out(job, sub, notifier)
                return
            except RunComfyError as exc:
                log.warning("job %d (request %s): polling stopped: %r", job.id, sub.request_id, exc)
                await self.end(job.id, JobState.FAILED, describe_provider_error(exc), notifier)
                return
            step = await self._apply(job, state, notifier)
            if step is None:
                return
            if step != shown:
                entered = step[0] != shown[0]
                if entered:
                    since = loop.time()
                shown = step
                stored = await self._store.set_progress(
                    job.id, step[0], queue_position=step[1], now=self._clock(), owner=self.owner
                )
                if entered:
                    metrics.job_entered(step[0])
                # As just written (or, when it ended meanwhile, as it ended).
                await self._notify(job.id, notifier, stored)
            delay = next_poll_delay(
                state=step[0].value,
                queue_position=step[1],
                seconds_in_state=loop.time() - since,
                expected_run_seconds=expected,
                plan=self._poll_plan,
            )
            pause = max(0.0, min(delay, deadline - loop.time()))
            metrics.POLL_DELAY.observe(pause)
            await asyncio.sleep(pause)

    async def _apply(
        self, job: JobRecord, state: ProviderState, notifier: JobNotifier | None
    ) -> tuple[JobState, int | None] | None:
        """Map a provider state to our next step; None when the job has ended."""
        match state:
            case InQueue(position=position):
                return (JobState.QUEUED, position)
            case InProgress():
                return (JobState.RUNNING, None)
            case Completed(video_url=url, cost_usd=cost):
                await self._complete(job, url, notifier)
                if cost is not None:
                    # Bookkeeping: after the video, which the member is waiting for.
                    await self._store.set_provider_cost(job.id, cost, now=self._clock())
            case Failed(error=error):
                log.warning(
                    "job %d (request %s) failed at the provider: %s", job.id, job.request_id, error
                )
                await self.end(
                    job.id,
                    JobState.FAILED,
                    N_("The video service could not make this video."),
                    notifier,
                )
            case Cancelled():
                await self.end(
                    job.id,
                    JobState.CANCELLED,
                    N_("The job was cancelled at the video service."),
                    notifier,
                )
        return None

    async def _time_out(
        self, job: JobRecord, sub: Submission, notifier: JobNotifier | None
    ) -> None:
        # One last look before giving up: a job the provider finished in time is delivered,
        # even when the bot was down at the deadline.
        try:
            last = await self._provider.poll(
                sub, deadline=asyncio.get_running_loop().time() + LAST_LOOK_SECONDS
            )
        except RunComfyError as exc:
            log.info("job %d: the last look before the deadline failed: %s", job.id, exc)
        else:
            if isinstance(last, Completed | Failed | Cancelled):
                await self._apply(job, last, notifier)
                return
        current = await self._store.get_job(job.id)
        if current is not None and current.state is JobState.QUEUED:
            try:
                await self._provider.cancel(sub)
            except RunComfyError as exc:
                log.warning("job %d: cancel after deadline failed: %s", job.id, exc)
        minutes = round(self._config.runcomfy.job_deadline / 60)
        await self.end(
            job.id,
            JobState.TIMED_OUT,
            N_("The video was not ready within {minutes} minutes, so the job was given up.").format(
                minutes=minutes
            ),
            notifier,
        )
