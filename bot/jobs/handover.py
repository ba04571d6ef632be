"""The end of a job that made its video: fetch it, post it once, store it as delivered."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import replace
from pathlib import Path

from bot.i18n import N_
from bot.jobs.fetch import fetch_video, find_post
from bot.jobs.machine_core import MachineCore
from bot.jobs.notify import JobNotifier, PostRefused
from bot.media.download import DownloadError
from bot.models import JobRecord, JobState
from bot.ops import metrics

log = logging.getLogger(__name__)


class HandoverMixin(MachineCore):
    """Delivery, for `bot.jobs.machine.JobMachine`."""

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
