"""When members saw what: each job's state changes as the bot stored them, against its status
message as Discord showed it; the provider's finish against the video's post.

Every time comes from one of the three parties, none from the benchmark's own clock: the bot's
store (what it records of every job anyway: accepted, submitted, first seen running, finished,
post started), the Discord emulator (each status message's creation and edit timestamps, read
from its event stream, and its request log) and the RunComfy emulator (when each job left its
queue and when it finished). They share the machine's wall clock.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.models import JobState
from cogs._render import STATES
from sandbox.discord import DiscordEmulator, EmulatorEvent, RequestRecord
from sandbox.runcomfy.jobs import EmulatedJob
from sandbox.runcomfy.jobs import RecordedRequest as RunComfyRequest

# The order a delivered job's states come in; showing a later one shows an earlier change too
# (the bot may coalesce a short-lived state away).
RANK = {
    JobState.ACCEPTED: 0,
    JobState.SUBMITTING: 1,
    JobState.QUEUED: 2,
    JobState.RUNNING: 3,
    JobState.DELIVERING: 4,
    JobState.DELIVERED: 5,
}
_BY_HEADLINE = {look.headline: state for state, look in STATES.items()}
_FOOTER = re.compile(r"Job (\d+)\b")
_CHANNEL = re.compile(r"/channels/(\d+)/")
MESSAGES_ROUTE = "/channels/{channel_id}/messages"
EDIT_ROUTE = "/channels/{channel_id}/messages/{message_id}"
# Routes outside Discord's global per-bot limit: interaction callbacks and webhooks (as the
# emulator's limiter has it), and the attachment CDN, which is no API route.
_UNMETERED = ("/interactions/", "/webhooks/", "/attachments/")


@dataclass(frozen=True)
class Sighting:
    """A status message as Discord showed it: created or edited at `at`, showing `state`."""

    at: float
    state: JobState | None
    """None for a headline the benchmark does not map (e.g. waiting for a free slot)."""
    posted: bool


class StatusWatch:
    """Every status message the emulator created or edited from now on, by job id."""

    def __init__(self, emu: DiscordEmulator) -> None:
        self.seen: dict[int, list[Sighting]] = defaultdict(list)
        self._events = emu.subscribe()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="status-watch")

    async def _run(self) -> None:
        while True:
            self._take(await self._events.get())

    def _take(self, event: EmulatorEvent) -> None:
        if event.type not in ("message_create", "message_update"):
            return
        message = event.data.get("message") or {}
        embeds = message.get("embeds") or []
        if not embeds:
            return
        found = _FOOTER.match(str((embeds[0].get("footer") or {}).get("text", "")))
        if found is None:
            return
        posted = event.type == "message_create"
        stamp = message["timestamp"] if posted else message.get("edited_timestamp")
        if not stamp:
            return
        state = _BY_HEADLINE.get(str(embeds[0].get("title", "")))
        at = datetime.fromisoformat(str(stamp)).timestamp()
        self.seen[int(found[1])].append(Sighting(at, state, posted))

    def showing(self, state: JobState) -> int:
        """How many jobs' status messages have shown `state` (or a later one)."""
        return sum(1 for seen in self.seen.values() if first_showing(seen, state) is not None)

    async def close(self) -> None:
        """Take what is still queued and stop watching."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        while not self._events.queue.empty():
            self._take(self._events.queue.get_nowait())
        self._events.close()


@dataclass(frozen=True)
class JobTimes:
    """One job as the bot's store has it, times as POSIX seconds."""

    id: int
    state: JobState
    channel_id: int
    request_id: str | None
    result_message_id: int | None
    accepted: float
    submitted: float | None
    started: float | None
    finished: float | None
    posting: float | None
    image_url: str = ""


def _seconds(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text).timestamp()


def stored_jobs(path: str) -> list[JobTimes]:
    """Every job in the bot's SQLite file (read-only)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT id, state, channel_id, request_id, result_message_id, created_at, "
            "submitted_at, started_at, finished_at, posting_at, image_url FROM jobs ORDER BY id"
        ).fetchall()
    return [
        JobTimes(
            id=int(row[0]),
            state=JobState(row[1]),
            channel_id=int(row[2]),
            request_id=row[3],
            result_message_id=None if row[4] is None else int(row[4]),
            accepted=float(_seconds(row[5]) or 0.0),
            submitted=_seconds(row[6]),
            started=_seconds(row[7]),
            finished=_seconds(row[8]),
            posting=_seconds(row[9]),
            image_url=str(row[10]),
        )
        for row in rows
    ]


@dataclass
class Lags:
    """Seconds from a change to members seeing it, and the changes never seen."""

    seconds: list[float] = field(default_factory=list)
    unseen: int = 0

    def add(self, since: float | None, shown: float | None) -> None:
        if since is None:
            return
        if shown is None:
            self.unseen += 1
        else:
            self.seconds.append(shown - since)


def first_showing(sightings: Iterable[Sighting], state: JobState) -> float | None:
    """When the status message first showed `state` or a later one."""
    rank = RANK[state]
    times = [s.at for s in sightings if s.state in RANK and RANK[s.state] >= rank]
    return min(times, default=None)


def first_post(sightings: Iterable[Sighting]) -> float | None:
    """When the job's status message first appeared."""
    return min((s.at for s in sightings if s.posted), default=None)


@dataclass
class ShowLags:
    """State change (store) -> status message showing it (Discord), by change."""

    arrived: Lags = field(default_factory=Lags)
    """The member's /animate reached Discord -> the status message posted (wall clock)."""
    posted: Lags = field(default_factory=Lags)
    queued: Lags = field(default_factory=Lags)
    running: Lags = field(default_factory=Lags)
    delivered: Lags = field(default_factory=Lags)
    provider_running: Lags = field(default_factory=Lags)
    """The provider started generating (RunComfy) -> the status shows it: polling included."""

    @property
    def changes(self) -> list[float]:
        """Every state change after the first post: submitted, running, delivered."""
        return [*self.queued.seconds, *self.running.seconds, *self.delivered.seconds]

    @property
    def unseen(self) -> int:
        return self.queued.unseen + self.running.unseen + self.delivered.unseen


def show_lags(
    jobs: Sequence[JobTimes],
    seen: dict[int, list[Sighting]],
    provider: dict[str, EmulatedJob],
    arrivals: dict[str, float] | None = None,
) -> ShowLags:
    """How long each delivered job's state changes took to show on its status message.

    ``arrivals``: when each /animate reached Discord (POSIX seconds), by the attachment id of
    its image, which the job's stored image URL names.
    """
    lags = ShowLags()
    for job in jobs:
        if job.state is not JobState.DELIVERED:
            continue
        sightings = seen.get(job.id, [])
        lags.arrived.add((arrivals or {}).get(attachment_id(job.image_url)), first_post(sightings))
        lags.posted.add(job.accepted, first_post(sightings))
        lags.queued.add(job.submitted, first_showing(sightings, JobState.QUEUED))
        lags.running.add(job.started, first_showing(sightings, JobState.RUNNING))
        lags.delivered.add(job.finished, first_showing(sightings, JobState.DELIVERED))
        at_provider = provider.get(job.request_id or "")
        if at_provider is not None:
            began = at_provider.created_at.timestamp() + at_provider.queue_seconds
            lags.provider_running.add(began, first_showing(sightings, JobState.RUNNING))
    return lags


def attachment_id(url: str) -> str:
    """The attachment id in a Discord CDN URL (``.../attachments/<channel>/<id>/<name>``)."""
    parts = url.split("?", 1)[0].split("/")
    return parts[-2] if len(parts) >= 2 else ""


def arrivals_by_attachment(emu: DiscordEmulator) -> dict[str, float]:
    """When each interaction reached the emulator (POSIX seconds), by the ids of the
    attachments it carried."""
    wall = time.time() - time.monotonic()  # the records keep the monotonic clock
    found: dict[str, float] = {}
    for record in emu.service.interactions.values():
        data = record.payload.get("data") if isinstance(record.payload, dict) else None
        resolved = data.get("resolved", {}) if isinstance(data, dict) else {}
        for key in resolved.get("attachments", {}) if isinstance(resolved, dict) else {}:
            found[str(key)] = record.created_at + wall
    return found


@dataclass
class DeliveryLags:
    """The provider finishing -> the video's post, in parts."""

    noticed: list[float] = field(default_factory=list)
    """Provider finished -> the bot's first poll after it (the poll that sees it finished)."""
    fetched: list[float] = field(default_factory=list)
    """That poll -> the bot starts posting (the store, the status, the video downloaded)."""
    queued: list[float] = field(default_factory=list)
    """The bot starts posting -> the post request reaches Discord (waiting for the budget)."""
    upload: list[float] = field(default_factory=list)
    """The post request reaches Discord -> the message exists (the upload, reported apart)."""
    to_request: list[float] = field(default_factory=list)
    """Provider finished -> the post request reaches Discord (everything but the upload)."""
    total: list[float] = field(default_factory=list)
    unmatched: int = 0


def delivery_lags(
    jobs: Sequence[JobTimes],
    provider: dict[str, EmulatedJob],
    emu: DiscordEmulator,
    requests: Sequence[RequestRecord],
    polls: dict[str, list[float]],
) -> DeliveryLags:
    """For every delivered job: when its video's post began and ended, from both emulators.

    ``polls``: per provider request id, when the bot asked for its state (RunComfy's log).
    """
    posts: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for record in requests:
        if (
            record.method == "POST"
            and record.route == MESSAGES_ROUTE
            and record.status == 200
            and record.received is not None
        ):
            posts[channel_of(record)].append((record.received, record.at))
    for spans in posts.values():
        spans.sort()
    lags = DeliveryLags()
    for job in jobs:
        if job.state is not JobState.DELIVERED or job.result_message_id is None:
            continue
        at_provider = provider.get(job.request_id or "")
        message = emu.service.messages.get(job.result_message_id)
        if at_provider is None or at_provider.finished_at is None or message is None:
            lags.unmatched += 1
            continue
        finished = at_provider.finished_at.timestamp()
        created = message.timestamp.timestamp()
        # The bot posts one message at a time per channel: the request that was under way
        # when the message was made is the last one received before it.
        spans = posts.get(job.channel_id, [])
        index = bisect_right(spans, (created, float("inf"))) - 1
        if index < 0 or spans[index][1] < created or job.posting is None:
            lags.unmatched += 1
            continue
        received = spans[index][0]
        asked = polls.get(job.request_id or "", [])
        after = bisect_right(asked, finished)
        if after >= len(asked):
            lags.unmatched += 1
            continue
        lags.noticed.append(asked[after] - finished)
        lags.fetched.append(job.posting - asked[after])
        lags.queued.append(received - job.posting)
        lags.upload.append(created - received)
        lags.to_request.append(received - finished)
        lags.total.append(created - finished)
    return lags


def poll_times(requests: Iterable[RunComfyRequest]) -> dict[str, list[float]]:
    """Per provider request id, when the bot asked for its state or result, in order."""
    found: dict[str, list[float]] = defaultdict(list)
    for record in requests:
        parts = record.path.split("/")
        if record.method == "GET" and len(parts) == 5 and parts[2] == "requests":
            found[parts[3]].append(record.at)
    for times in found.values():
        times.sort()
    return found


def channel_of(record: RequestRecord) -> int:
    """The channel a ``/channels/{channel_id}/...`` request was for."""
    found = _CHANNEL.search(record.path)
    if found is None:
        raise ValueError(f"not a channel route: {record.path}")
    return int(found[1])


def peak_in_window(times: Iterable[float], window: float) -> int:
    """The most events inside any `window`-second stretch."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, at in enumerate(ordered):
        while at - ordered[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best


def per_channel_peaks(
    requests: Iterable[RequestRecord], method: str, route: str, window: float
) -> dict[int, int]:
    """Per channel: the most successful `method route` requests reaching Discord in any
    `window` seconds."""
    times: dict[int, list[float]] = defaultdict(list)
    for record in requests:
        if record.method == method and record.route == route and record.status < 300:
            times[channel_of(record)].append(
                record.received if record.received is not None else record.at
            )
    return {channel: peak_in_window(at, window) for channel, at in times.items()}


def metered(requests: Iterable[RequestRecord]) -> list[float]:
    """When each request counted against Discord's global limit reached it."""
    return [
        r.received if r.received is not None else r.at
        for r in requests
        if r.route and not r.route.startswith(_UNMETERED)
    ]
