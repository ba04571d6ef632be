"""One job's life at the provider: wait for a slot, submit once, poll, fetch, hand over.

:class:`JobMachine` is the state machine; :class:`~bot.jobs.runner.JobRunner` owns the tasks it
runs in. Every step is stored before the next one starts, so a restart resumes from the store.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp

from bot import logs
from bot.config import Config
from bot.errors import JobNotFound
from bot.i18n import N_
from bot.jobs.critical import CriticalSections
from bot.jobs.fetch import fetch_video, find_post
from bot.jobs.history import RecentRuns
from bot.jobs.notify import JobNotifier, Notify, PostRefused
from bot.jobs.polling import PollPlan, next_poll_delay
from bot.jobs.slots import SlotQueue
from bot.jobs.words import (
    CRASHED_AGAIN,
    CRASHED_BEFORE_SUBMIT,
    LAST_LOOK_SECONDS,
    NO_SLOT,
    UNCONFIRMED,
    describe_provider_error,
)
from bot.media.download import DownloadError
from bot.models import JobRecord, JobState
from bot.ops import metrics
from bot.runcomfy.client import RunComfyClient, Submission, VideoInput
from bot.runcomfy.errors import (
    DeadlineExceededError,
    RunComfyError,
    UnknownSubmissionError,
)
from bot.runcomfy.states import Cancelled, Completed, Failed, InProgress, InQueue, ProviderState
from bot.store.protocol import Store

log = logging.getLogger(__name__)


SUBMISSION_WRITES = 5
"""Tries at storing a submitted job's request id (about 7 s of a refusing database)."""


class JobMachine:
    """Drives jobs through their states; stateless apart from the shared provider queue."""

    def __init__(
        self,
        *,
        config: Config,
        store: Store,
        provider: RunComfyClient,
        http: aiohttp.ClientSession,
        queue: SlotQueue,
        clock: Callable[[], datetime],
        notify: Notify,
        owner: str,
    ) -> None:
        self.owner = owner
        """This process's identity in the jobs' leases: every write of the run names it."""
        self.closing = False
        """Set on a graceful stop: no new submit starts."""
        self._critical = CriticalSections()
        self._config = config
        self._store = store
        self._provider = provider
        self._http = http
        self._queue = queue
        self._clock = clock
        self._notify = notify
        self.runs = RecentRuns(store.recent_run_seconds)
        """The expected generation time of each setting, shared by every job."""
        self._poll_plan = PollPlan(
            floor=min(1.0, config.runcomfy.poll_interval),
            ceiling=max(config.runcomfy.poll_interval * 3, 1.0),
        )

    async def calm(self, grace: float) -> None:
        """Wait (up to ``grace`` seconds) until no submit or post is under way."""
        await self._critical.calm(grace)

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

    def submission(self, job: JobRecord) -> Submission:
        assert job.request_id is not None
        return self._provider.submission_for(
            job.request_id,
            status_url=job.status_url,
            result_url=job.result_url,
            cancel_url=job.cancel_url,
        )

    def _deadline(self, job: JobRecord) -> float:
        """The job's deadline on the event loop's clock."""
        ends = job.created_at + timedelta(seconds=self._config.runcomfy.job_deadline)
        left = (ends - self._clock()).total_seconds()
        return asyncio.get_running_loop().time() + left

    async def end(
        self,
        job_id: int,
        state: JobState,
        reason: str,
        notifier: JobNotifier | None,
        *,
        owned: bool = True,
    ) -> None:
        """End a job that did not deliver and release its credits; ``owned=False`` for an
        ending decided outside the run (a cancel), which holds whatever the lease."""
        changed = await self._store.finish_failed(
            job_id, state, error=reason, now=self._clock(), owner=self.owner if owned else None
        )
        if changed:
            log.info("job %d ended %s: %s", job_id, state.value, reason)
            await self._notify(job_id, notifier)

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

    async def _complete(
        self, job: JobRecord, url: str | None, notifier: JobNotifier | None
    ) -> None:
        if not url:
            log.warning("job %d (request %s) completed without a video", job.id, job.request_id)
            await self.end(
                job.id,
                JobState.FAILED,
                N_("The video service finished but returned no video."),
                notifier,
            )
            return
        if job.posting_at is not None and notifier is not None:
            # A post of this video started before a restart: look for it before posting again.
            found = await notifier.find_delivery(job)
            if found is not None:
                log.info("job %d: its video was already posted (message %d)", job.id, found)
                await self._delivered(job.id, found, notifier)
                return
        await self._store.set_video_url(job.id, url)
        await self._store.set_progress(
            job.id, JobState.DELIVERING, queue_position=None, now=self._clock(), owner=self.owner
        )
        metrics.job_entered(JobState.DELIVERING)
        # As just written: the store is not asked again on the way to the post.
        job = replace(job, state=JobState.DELIVERING, queue_position=None, video_url=url)
        await self._notify(job.id, notifier, job)
        with tempfile.TemporaryDirectory(prefix="seedance-") as tmp:
            path = Path(tmp) / f"seedance-{job.id}.mp4"
            try:
                delivery = await fetch_video(self._http, self._config.runcomfy, job.id, url, path)
            except DownloadError as exc:
                log.warning("job %d: video download failed: %s", job.id, exc)
                await self.end(
                    job.id,
                    JobState.FAILED,
                    N_("The finished video could not be fetched: {reason}").format(reason=exc),
                    notifier,
                )
                return
            if not await self._store.mark_posting(job.id, owner=self.owner, now=self._clock()):
                return  # it ended meanwhile, or another process holds it now
            try:
                with self._critical.hold(job.id):
                    message_id = await notifier.deliver(job, delivery) if notifier else None
            except Exception as exc:
                if isinstance(exc, PostRefused):
                    log.warning("job %d: the channel refused the video's post: %s", job.id, exc)
                else:
                    log.exception("job %d: delivery failed", job.id)
                # Discord may have made the post and only its answer was lost: look first
                # (after its status message, as stored now).
                found = await find_post(await self._store.get_job(job.id) or job, notifier)
                if found is not None:
                    await self._delivered(job.id, found, notifier)
                    return
                await self.end(
                    job.id,
                    JobState.FAILED,
                    N_("The video was made but could not be posted in this channel."),
                    notifier,
                )
                return
        await self._delivered(job.id, message_id, notifier)

    async def _delivered(
        self, job_id: int, message_id: int | None, notifier: JobNotifier | None
    ) -> None:
        if await self._store.finish_delivered(
            job_id, result_message_id=message_id, now=self._clock(), owner=self.owner
        ):
            log.info("job %d delivered", job_id)
            await self._notify(job_id, notifier)
