"""The job runner: reserve, submit once, poll, fetch, hand over for delivery, settle the charge.

The engine knows nothing of Discord. A cog gives each job a `JobNotifier` that shows progress
and delivers the video; the runner tells it about every change and settles credits itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import aiohttp

from bot.config import Config
from bot.jobs.breaker import CircuitBreaker, ProviderUnavailable
from bot.jobs.polling import PollPlan, expected_run_seconds, next_poll_delay
from bot.jobs.slots import FairQueue
from bot.media.download import DownloadError, VideoTooLargeError, download_video
from bot.models import (
    ApprovalRequest,
    GuildDefaults,
    GuildSettings,
    JobRecord,
    JobState,
    NewJob,
    Usage,
)
from bot.quota import job_cost
from bot.runcomfy.client import RunComfyClient, Submission, VideoInput
from bot.runcomfy.errors import (
    ApiError,
    AuthError,
    DeadlineExceededError,
    InputRejectedError,
    NoBalanceError,
    NotFoundError,
    RateLimitedError,
    RunComfyError,
    UnknownStateError,
    UnknownSubmissionError,
)
from bot.runcomfy.states import Cancelled, Completed, Failed, InProgress, InQueue, ProviderState
from bot.store import Store
from bot.tasks import TaskSet

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Delivery:
    """A finished video: the local file when it could be fetched, always the provider's URL."""

    video_url: str
    file: Path | None
    size: int | None


class JobNotifier(Protocol):
    """How a job shows itself to people; implemented by the Discord side."""

    async def job_changed(self, job: JobRecord) -> None:
        """Show the job's new state (queued, running, finished, failed ...)."""

    async def deliver(self, job: JobRecord, delivery: Delivery) -> int | None:
        """Post the finished video; return the message id. Raise to report a failed post."""


class CancelResult(StrEnum):
    CANCELLED = "cancelled"
    NOT_ALLOWED = "not_allowed"
    NOT_CANCELLABLE = "not_cancellable"
    FINISHED = "finished"
    UNKNOWN = "unknown"


def describe_provider_error(exc: RunComfyError) -> str:
    """Plain words for a member; raw provider bodies only ever go to the log."""
    if isinstance(exc, AuthError):
        return (
            "The bot's video service key was refused, so nothing was made. "
            "The operator needs to fix the key."
        )
    if isinstance(exc, NoBalanceError):
        return "The bot's video service account has run out of balance, so nothing was made."
    if isinstance(exc, InputRejectedError):
        return "The video service rejected this request (the image, prompt or settings)."
    if isinstance(exc, RateLimitedError):
        return "The video service is too busy right now. Please try again in a few minutes."
    if isinstance(exc, NotFoundError):
        return "The video service no longer knows this job."
    if isinstance(exc, UnknownStateError):
        return f"The video service reported a state the bot does not understand ({exc.state!r})."
    if isinstance(exc, ApiError):
        return "The video service had a problem with this job."
    return "The video service could not be reached."


class JobService:
    """Runs every job of the process; one instance per bot."""

    def __init__(
        self,
        *,
        config: Config,
        store: Store,
        provider: RunComfyClient,
        http: aiohttp.ClientSession,
        breaker: CircuitBreaker | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._config = config
        self._store = store
        self._provider = provider
        self._http = http
        self._clock = clock
        self._queue = FairQueue(config.runcomfy.max_concurrent_jobs, on_change=self._queue_changed)
        self._shown_positions: dict[int, int] = {}
        self._breaker = breaker or CircuitBreaker()
        self._probe_lock = asyncio.Lock()
        self._tasks = TaskSet()
        self._running: dict[int, asyncio.Task[None]] = {}
        self._notifiers: dict[int, JobNotifier] = {}
        self._poll_plan = PollPlan(
            floor=min(1.0, config.runcomfy.poll_interval),
            ceiling=max(config.runcomfy.poll_interval * 3, 1.0),
        )

    # -- quota and moderation ------------------------------------------------------------

    @property
    def defaults(self) -> GuildDefaults:
        """A server's budgets until its moderators change them: the config's `[quota]`."""
        q = self._config.quota
        return GuildDefaults(
            period=q.period,
            server_credits=q.server_credits,
            member_credits=q.member_credits,
            member_concurrent=q.member_concurrent_jobs,
            server_concurrent=q.server_concurrent_jobs,
        )

    async def ensure_provider_ready(self) -> None:
        """Refuse new work up front while the video service is failing; probe after a pause."""
        if self._breaker.trouble is None:
            return
        async with self._probe_lock:
            if self._breaker.probe_due():
                try:
                    await self._provider.probe()
                except RunComfyError as exc:
                    log.info("video service probe failed: %s", exc)
        if self._breaker.trouble is not None:
            raise ProviderUnavailable(self._breaker.trouble)

    def cost(self, resolution: str, duration: int) -> int:
        return job_cost(self._config.quota.cost, resolution, duration)

    async def check_gates(
        self,
        guild_id: int,
        member_id: int,
        channel_id: int,
        *,
        prompt: str,
        parent_channel_id: int | None = None,
    ) -> None:
        """Paused, banned, channel, blocklist: raises `RequestRefused` before anything is spent."""
        await self._store.check_gates(
            guild_id,
            member_id,
            channel_id,
            parent_channel_id=parent_channel_id,
            prompt=prompt,
        )

    async def accept(
        self,
        new: NewJob,
        *,
        role_ids: Collection[int] = (),
        parent_channel_id: int | None = None,
    ) -> JobRecord:
        """Reserve the credits and persist the job, atomically, under the server's settings.

        The job comes back ACCEPTED, or PENDING_APPROVAL when it went to the moderators.
        Raises `QuotaExceeded` or `RequestRefused`, having written nothing.
        """
        cost = self.cost(new.resolution, new.duration)
        job = await self._store.reserve_request(
            new,
            cost=cost,
            role_ids=role_ids,
            defaults=self.defaults,
            now=self._clock(),
            parent_channel_id=parent_channel_id,
        )
        log.info("job %d %s (%d credits)", job.id, job.state.value, cost)
        return job

    async def usage(self, guild_id: int, member_id: int, role_ids: Collection[int] = ()) -> Usage:
        return await self._store.member_usage(
            guild_id, member_id, role_ids=role_ids, defaults=self.defaults, now=self._clock()
        )

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        return await self._store.guild_settings(guild_id, self.defaults)

    async def approve(self, guild_id: int, job_id: int, *, by: int) -> ApprovalRequest:
        """A moderator lets an over-cap request run against the pool; start it afterwards."""
        return await self._store.approve_request(guild_id, job_id, by=by, now=self._clock())

    async def deny(
        self, guild_id: int, job_id: int, *, by: int, reason: str | None
    ) -> ApprovalRequest:
        return await self._store.deny_request(
            guild_id, job_id, by=by, reason=reason, now=self._clock()
        )

    async def pending_approvals(self) -> list[ApprovalRequest]:
        return await self._store.pending_approvals()

    async def set_approval_message(self, job_id: int, message_id: int) -> None:
        await self._store.set_approval_message(job_id, message_id)

    def slot_position(self, job_id: int) -> int | None:
        """Where a job waits for a free provider slot (1 = next), None when not waiting."""
        return self._queue.position(job_id)

    def _queue_changed(self) -> None:
        positions = self._queue.positions()
        for job_id, position in positions.items():
            if self._shown_positions.get(job_id) != position:
                self._shown_positions[job_id] = position
                notifier = self._notifiers.get(job_id)
                self._tasks.create(self._notify(job_id, notifier), name=f"job-{job_id}-position")
        for job_id in list(self._shown_positions):
            if job_id not in positions:
                del self._shown_positions[job_id]

    async def expected_finish(self, job: JobRecord) -> datetime | None:
        """When a running job should be done, from past jobs with the same settings."""
        if job.state is not JobState.RUNNING or job.started_at is None:
            return None
        history = await self._store.recent_run_seconds(job.resolution, job.duration)
        return job.started_at + timedelta(seconds=expected_run_seconds(history, job.duration))

    # -- lifecycle -------------------------------------------------------------------------

    def watch(self, job: JobRecord, notifier: JobNotifier) -> None:
        """Show a job that is not running yet (waiting for a moderator) as it changes."""
        self._notifiers[job.id] = notifier

    def start(self, job: JobRecord, notifier: JobNotifier) -> None:
        """Run the job in the background from whatever state it is stored in."""
        self._notifiers[job.id] = notifier
        task = self._tasks.create(self._run(job.id), name=f"job-{job.id}")
        self._running[job.id] = task
        task.add_done_callback(functools.partial(self._forget, job.id))

    def _forget(self, job_id: int, _task: asyncio.Task[None]) -> None:
        self._running.pop(job_id, None)
        self._notifiers.pop(job_id, None)

    @property
    def active_jobs(self) -> int:
        return len(self._running)

    async def abandon(self, job: JobRecord, reason: str) -> None:
        """Release a job that never reached the provider (e.g. its status message failed)."""
        if job.state is JobState.PENDING_APPROVAL:
            await self._store.withdraw_request(job.id, member_id=job.member_id)
            return
        await self._store.finish_failed(job.id, JobState.FAILED, error=reason, now=self._clock())

    async def recent_jobs(self, guild_id: int, member_id: int, limit: int = 10) -> list[JobRecord]:
        return await self._store.recent_jobs(guild_id, member_id, limit=limit)

    async def get_job(self, job_id: int) -> JobRecord | None:
        return await self._store.get_job(job_id)

    async def set_status_message(self, job_id: int, message_id: int) -> None:
        await self._store.set_status_message(job_id, message_id, now=self._clock())

    async def unfinished_jobs(self) -> list[JobRecord]:
        return await self._store.unfinished_jobs()

    async def close(self) -> None:
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
                await self.deny(job.guild_id, job.id, by=actor_id, reason=f"Cancelled by {who}.")
            await self._notify(job.id, self._notifiers.pop(job.id, None))
            return CancelResult.CANCELLED
        if job.state is JobState.ACCEPTED and self._queue.position(job.id) is not None:
            # Still waiting here for a provider slot: nothing was sent, stop it locally.
            # Take the notifier first: stopping the task forgets it.
            notifier = self._notifiers.get(job.id)
            await self._stop_task(job.id)
            await self._end(job.id, JobState.CANCELLED, f"Cancelled by {who}.", notifier)
            return CancelResult.CANCELLED
        if job.state is not JobState.QUEUED or job.request_id is None:
            return CancelResult.NOT_CANCELLABLE
        try:
            outcome = await self._provider.cancel(self._submission(job))
        except RunComfyError as exc:
            log.warning("job %d: cancel failed at the provider: %s", job.id, exc)
            return CancelResult.NOT_CANCELLABLE
        if outcome.value != "cancelled":
            return CancelResult.NOT_CANCELLABLE
        notifier = self._notifiers.get(job.id)
        await self._stop_task(job.id)
        await self._end(job.id, JobState.CANCELLED, f"Cancelled by {who}.", notifier)
        return CancelResult.CANCELLED

    async def _stop_task(self, job_id: int) -> None:
        task = self._running.get(job_id)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the run ---------------------------------------------------------------------------

    def _submission(self, job: JobRecord) -> Submission:
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

    async def _notify(self, job_id: int, notifier: JobNotifier | None) -> None:
        if notifier is None:
            return
        job = await self._store.get_job(job_id)
        if job is None:
            return
        try:
            await notifier.job_changed(job)
        except Exception:
            # Showing progress must never break the job itself.
            log.exception("job %d: status update failed", job_id)

    async def _end(
        self, job_id: int, state: JobState, reason: str, notifier: JobNotifier | None
    ) -> None:
        changed = await self._store.finish_failed(job_id, state, error=reason, now=self._clock())
        if changed:
            log.info("job %d ended %s: %s", job_id, state.value, reason)
            await self._notify(job_id, notifier)

    async def _run(self, job_id: int) -> None:
        try:
            await self._run_job(job_id)
        finally:
            self._queue.release(job_id)

    async def _run_job(self, job_id: int) -> None:
        notifier = self._notifiers.get(job_id)
        job = await self._store.get_job(job_id)
        if job is None or job.state.is_terminal or job.state is JobState.PENDING_APPROVAL:
            return
        deadline = self._deadline(job)
        if job.state is not JobState.ACCEPTED:
            # Already at the provider (a resumed job): it holds a slot without waiting.
            self._queue.admit_now(job.guild_id, job.member_id, job.id)
        if job.state is JobState.SUBMITTING:
            # We sent a submit but never stored its answer: it may or may not be running.
            await self._unknown_submission(job, "The bot stopped while sending this job.", notifier)
            return
        if job.state is JobState.UNKNOWN_SUBMISSION:
            await self._hold_until_deadline(job, deadline, notifier)
            return
        if job.state is JobState.ACCEPTED:
            # A global cap on jobs at the provider, shared fairly across servers and members.
            if self._queue.running >= self._queue.capacity:
                await self._notify(job.id, notifier)
            await self._queue.acquire(job.guild_id, job.member_id, job.id)
            submitted = await self._submit(job, deadline, notifier)
            if submitted is None:
                return
            job = submitted
        await self._poll(job, deadline, notifier)

    async def _submit(
        self, job: JobRecord, deadline: float, notifier: JobNotifier | None
    ) -> JobRecord | None:
        if not await self._store.mark_submitting(job.id, self._clock()):
            return None
        request = VideoInput(
            prompt=job.prompt,
            first_frame_image_url=job.image_url,
            last_frame_image_url=job.last_frame_url,
            resolution=job.resolution,
            duration=job.duration,
        )
        try:
            sub = await self._provider.submit(request)
        except UnknownSubmissionError as exc:
            log.warning("job %d: submit outcome unknown: %s", job.id, exc)
            await self._unknown_submission(
                job, "The video service did not confirm this job.", notifier, deadline
            )
            return None
        except RunComfyError as exc:
            log.warning("job %d: submit refused: %r", job.id, exc)
            await self._end(job.id, JobState.FAILED, describe_provider_error(exc), notifier)
            return None
        log.info("job %d submitted as request %s", job.id, sub.request_id)
        updated = await self._store.set_submission(
            job.id,
            request_id=sub.request_id,
            status_url=sub.status_url,
            result_url=sub.result_url,
            cancel_url=sub.cancel_url,
            now=self._clock(),
        )
        await self._notify(job.id, notifier)
        return updated

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
            error=(
                f"{what} It is not sent again, so you cannot be charged twice; "
                f"the credits are held for up to {minutes} minutes in case it ran, then released."
            ),
            now=self._clock(),
        )
        await self._notify(job.id, notifier)
        await self._hold_until_deadline(job, deadline or self._deadline(job), notifier)

    async def _hold_until_deadline(
        self, job: JobRecord, deadline: float, notifier: JobNotifier | None
    ) -> None:
        await asyncio.sleep(max(0.0, deadline - asyncio.get_running_loop().time()))
        await self._end(
            job.id,
            JobState.FAILED,
            "The video service never confirmed this job. Your credits were released.",
            notifier,
        )

    async def _poll(self, job: JobRecord, deadline: float, notifier: JobNotifier | None) -> None:
        loop = asyncio.get_running_loop()
        sub = self._submission(job)
        history = await self._store.recent_run_seconds(job.resolution, job.duration)
        expected = expected_run_seconds(history, job.duration)
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
                await self._end(job.id, JobState.FAILED, describe_provider_error(exc), notifier)
                return
            step = await self._apply(job, state, notifier)
            if step is None:
                return
            if step != shown:
                if step[0] != shown[0]:
                    since = loop.time()
                shown = step
                await self._store.set_progress(
                    job.id, step[0], queue_position=step[1], now=self._clock()
                )
                await self._notify(job.id, notifier)
            delay = next_poll_delay(
                state=step[0].value,
                queue_position=step[1],
                seconds_in_state=loop.time() - since,
                expected_run_seconds=expected,
                plan=self._poll_plan,
            )
            await asyncio.sleep(max(0.0, min(delay, deadline - loop.time())))

    async def _apply(
        self, job: JobRecord, state: ProviderState, notifier: JobNotifier | None
    ) -> tuple[JobState, int | None] | None:
        """Map a provider state to our next step; None when the job has ended."""
        match state:
            case InQueue(position=position):
                return (JobState.QUEUED, position)
            case InProgress():
                return (JobState.RUNNING, None)
            case Completed(video_url=url):
                await self._complete(job, url, notifier)
            case Failed(error=error):
                log.warning(
                    "job %d (request %s) failed at the provider: %s", job.id, job.request_id, error
                )
                await self._end(
                    job.id,
                    JobState.FAILED,
                    "The video service could not make this video.",
                    notifier,
                )
            case Cancelled():
                await self._end(
                    job.id,
                    JobState.CANCELLED,
                    "The job was cancelled at the video service.",
                    notifier,
                )
        return None

    async def _time_out(
        self, job: JobRecord, sub: Submission, notifier: JobNotifier | None
    ) -> None:
        current = await self._store.get_job(job.id)
        if current is not None and current.state is JobState.QUEUED:
            try:
                await self._provider.cancel(sub)
            except RunComfyError as exc:
                log.warning("job %d: cancel after deadline failed: %s", job.id, exc)
        minutes = round(self._config.runcomfy.job_deadline / 60)
        await self._end(
            job.id,
            JobState.TIMED_OUT,
            f"The video was not ready within {minutes} minutes, so the job was given up.",
            notifier,
        )

    async def _complete(
        self, job: JobRecord, url: str | None, notifier: JobNotifier | None
    ) -> None:
        if not url:
            log.warning("job %d (request %s) completed without a video", job.id, job.request_id)
            await self._end(
                job.id,
                JobState.FAILED,
                "The video service finished but returned no video.",
                notifier,
            )
            return
        await self._store.set_video_url(job.id, url)
        await self._store.set_progress(
            job.id, JobState.DELIVERING, queue_position=None, now=self._clock()
        )
        await self._notify(job.id, notifier)
        with tempfile.TemporaryDirectory(prefix="seedance-") as tmp:
            path = Path(tmp) / f"seedance-{job.id}.mp4"
            try:
                size = await download_video(
                    self._http,
                    url,
                    path,
                    base_url=self._config.runcomfy.base_url,
                    max_bytes=self._config.runcomfy.max_video_bytes,
                )
                delivery = Delivery(video_url=url, file=path, size=size)
            except VideoTooLargeError:
                delivery = Delivery(video_url=url, file=None, size=None)
            except DownloadError as exc:
                log.warning("job %d: video download failed: %s", job.id, exc)
                await self._end(
                    job.id,
                    JobState.FAILED,
                    f"The finished video could not be fetched: {exc}",
                    notifier,
                )
                return
            current = await self._store.get_job(job.id)
            if current is None or current.state.is_terminal:
                return
            try:
                message_id = await notifier.deliver(current, delivery) if notifier else None
            except Exception:
                log.exception("job %d: delivery failed", job.id)
                await self._end(
                    job.id,
                    JobState.FAILED,
                    "The video was made but could not be posted in this channel.",
                    notifier,
                )
                return
        if await self._store.finish_delivered(
            job.id, result_message_id=message_id, now=self._clock()
        ):
            log.info("job %d delivered", job.id)
            await self._notify(job.id, notifier)
