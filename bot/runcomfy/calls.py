"""What goes to RunComfy and what comes back: a request, an accepted submission, a cancel."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class VideoInput:
    """One image-to-video request, in the model's input schema terms."""

    prompt: str
    first_frame_image_url: str
    last_frame_image_url: str | None
    resolution: str
    duration: int

    def to_payload(self) -> dict[str, Any]:
        """The JSON body of the submit call."""
        payload: dict[str, Any] = {
            "prompt": self.prompt,
            "first_frame_image_url": self.first_frame_image_url,
            "resolution": self.resolution,
            "duration": self.duration,
        }
        if self.last_frame_image_url is not None:
            payload["last_frame_image_url"] = self.last_frame_image_url
        return payload


@dataclass(frozen=True)
class Submission:
    """A job RunComfy accepted, with the URLs to follow it."""

    request_id: str
    status_url: str
    result_url: str
    cancel_url: str


class CancelOutcome(StrEnum):
    """What a cancel achieved; NOT_CANCELLABLE means the job may still run and be charged."""

    CANCELLED = "cancelled"
    NOT_CANCELLABLE = "not_cancellable"
