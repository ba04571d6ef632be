"""Provider states: a closed set of frozen dataclasses, parsed in one place."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.runcomfy.errors import UnknownStateError

REQUEST_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")
# Failure bodies are free-form and only go to the logs; keep a runaway one from flooding them.
_MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class InQueue:
    """Waiting at RunComfy; ``position`` is the queue position when RunComfy gave one."""

    position: int | None = None


@dataclass(frozen=True)
class InProgress:
    """Generating; RunComfy can no longer cancel it and may charge for it."""


@dataclass(frozen=True)
class Completed:
    """Finished; ``video_url`` is None when RunComfy reported no video."""

    video_url: str | None
    cost_usd: float | None = None


@dataclass(frozen=True)
class Failed:
    """RunComfy gave up; ``error`` is its free-form error, dumped to a string for the logs."""

    error: str


@dataclass(frozen=True)
class Cancelled:
    """Cancelled while it was still queued."""


ProviderState = InQueue | InProgress | Completed | Failed | Cancelled

_QUEUED = frozenset({"in_queue", "pending", "waiting", "starting"})
_RUNNING = frozenset({"in_progress", "processing"})
_COMPLETED = frozenset({"completed", "succeeded"})
_CANCELLED = frozenset({"cancelled", "canceled"})
_FAILED = frozenset({"failed"})


def is_terminal(state: ProviderState) -> bool:
    """True when the job will not change any more."""
    return isinstance(state, Completed | Failed | Cancelled)


def parse_state(payload: Mapping[str, Any], *, request_id: str | None = None) -> ProviderState:
    """Turn a status or result answer into a state; raise UnknownStateError for anything else.

    ``request_id`` names the job in the error when the payload does not.
    """
    own_id = payload.get("request_id")
    if isinstance(own_id, str) and REQUEST_ID_RE.fullmatch(own_id):
        request_id = own_id
    raw = payload.get("status")
    status = raw.strip().lower() if isinstance(raw, str) else ""
    if status in _QUEUED:
        return InQueue(position=_queue_position(payload.get("queue_position")))
    if status in _RUNNING:
        return InProgress()
    if status in _COMPLETED:
        return Completed(video_url=_video_url(payload.get("output")), cost_usd=_cost(payload))
    if status in _FAILED:
        return Failed(error=_error_text(payload.get("error")))
    if status in _CANCELLED:
        return Cancelled()
    shown = raw if isinstance(raw, str) else repr(raw)
    raise UnknownStateError(shown[:100], request_id=request_id)


def _queue_position(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _video_url(output: Any) -> str | None:
    if not isinstance(output, Mapping):
        return None
    video = output.get("video")
    if isinstance(video, str) and video.strip():
        return video.strip()
    videos = output.get("videos")
    if isinstance(videos, list):
        for item in videos:
            if isinstance(item, str) and item.strip():
                return item.strip()
    return None


def _cost(payload: Mapping[str, Any]) -> float | None:
    value = payload.get("cost")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        cost = float(value)
    except ValueError:
        return None
    return cost if math.isfinite(cost) and cost >= 0 else None


def _error_text(error: Any) -> str:
    if error is None:
        text = "no error detail given"
    elif isinstance(error, str):
        text = error
    else:
        text = json.dumps(error, ensure_ascii=False, sort_keys=True, default=str)
    return text[:_MAX_ERROR_CHARS]
