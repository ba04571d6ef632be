"""Jobs as the emulator keeps them, and their inputs: frames fetched or sent inline."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import aiohttp

from sandbox.runcomfy.inputs import IMAGE_MAX_BYTES, image_problem

JobOutcome = Literal[
    "completed", "failed", "unknown_state", "missing_video", "video_404", "videos_list"
]


@dataclass
class JobPlan:
    """How one job will go; None timings fall back to the emulator's."""

    outcome: JobOutcome = "completed"
    queue_seconds: float | None = None
    run_seconds: float | None = None
    error: Any = None
    state: str = "exploded"
    video_bytes: bytes | None = None


@dataclass
class EmulatedJob:
    """A job as the emulator sees it."""

    request_id: str
    payload: dict[str, Any]
    plan: JobPlan
    created_at: datetime
    queue_seconds: float
    run_seconds: float
    queued_until: float
    status: str = "in_queue"
    finished_at: datetime | None = None
    error: Any = None
    video: bytes | None = None
    task: asyncio.Task[None] | None = None
    # Images sent as data: URIs, decoded at submit, by field name.
    inline_images: dict[str, bytes] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.status not in ("in_queue", "in_progress")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    at: float = 0.0
    """When it arrived (POSIX seconds)."""


class JobFailure(Exception):
    """The job fails with ``error`` as its result's error."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", "job failed"))
        self.error = error


async def fetch_image(http: aiohttp.ClientSession, url: str, field_name: str) -> bytes:
    """The image at ``url``, read no further than the size limit."""
    try:
        async with http.get(url) as resp:
            if resp.status != 200:
                raise JobFailure(
                    fetch_error(field_name, f"fetching the image answered HTTP {resp.status}")
                )
            data = bytearray()
            async for chunk in resp.content.iter_chunked(64 * 1024):
                data += chunk
                if len(data) >= IMAGE_MAX_BYTES:
                    break
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise JobFailure(
            fetch_error(field_name, f"the image could not be fetched ({type(exc).__name__})")
        ) from exc
    return bytes(data)


async def check_image(data: bytes, field_name: str) -> None:
    """Raise JobFailure with the schema's message when the image breaks one of its rules."""
    if len(data) >= IMAGE_MAX_BYTES:
        raise JobFailure(fetch_error(field_name, "File size must be less than 30 MB."))
    problem = await asyncio.to_thread(image_problem, data)
    if problem:
        raise JobFailure(fetch_error(field_name, problem))


def fetch_error(field_name: str, message: str) -> dict[str, Any]:
    """The error a job fails with when one of its frames is unusable."""
    return {"code": "invalid_input", "field": f"{field_name}_image_url", "message": message}


def job_output(job: EmulatedJob, cdn_url: str | None) -> dict[str, Any]:
    """The ``output`` of a completed job: its video on the CDN, as its plan says."""
    if not cdn_url:
        raise RuntimeError("no CDN: start() the emulator or serve cdn_app and set cdn_url")
    url = f"{cdn_url}/files/{job.request_id}.mp4"
    if job.plan.outcome == "missing_video":
        return {}
    if job.plan.outcome == "videos_list":
        return {"videos": [url]}
    return {"video": url}
