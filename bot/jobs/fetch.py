"""Fetching a finished video for delivery, and finding its post: a made video is never lost."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp

from bot.config import RunComfyConfig
from bot.jobs.notify import Delivery, JobNotifier
from bot.media.download import DownloadInterrupted, VideoTooLargeError, download_video
from bot.models import JobRecord

log = logging.getLogger(__name__)

DOWNLOAD_ATTEMPTS = 3
"""Tries at fetching a finished video before only its link is delivered."""


async def fetch_video(
    http: aiohttp.ClientSession, config: RunComfyConfig, job_id: int, url: str, path: Path
) -> Delivery:
    """The video fetched into ``path``; a cut download is tried again, and when it keeps
    being cut the link alone is delivered. A video over the size cap is delivered as its link.

    Raises :class:`~bot.media.download.DownloadError` for a video that must not be posted at
    all (not a video, not from an allowed host, gone).
    """
    for attempt in range(DOWNLOAD_ATTEMPTS):
        if attempt:
            await asyncio.sleep(2.0 ** (attempt - 1))
        try:
            size = await download_video(
                http,
                url,
                path,
                base_url=config.base_url,
                output_hosts=config.output_hosts,
                max_bytes=config.max_video_bytes,
            )
            return Delivery(video_url=url, file=path, size=size)
        except VideoTooLargeError:
            return Delivery(video_url=url, file=None, size=None)
        except DownloadInterrupted as exc:
            log.warning("job %d: video download cut (%s), attempt %d", job_id, exc, attempt)
    return Delivery(video_url=url, file=None, size=None, cut=True)


async def find_post(job: JobRecord, notifier: JobNotifier | None) -> int | None:
    """The id of the job's video post if an attempt whose answer was lost made it."""
    if notifier is None:
        return None
    try:
        return await notifier.find_delivery(job)
    except Exception:
        log.exception("job %d: could not look for its post", job.id)
        return None
