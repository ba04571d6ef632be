"""A local RunComfy Model API: the documented calls, a job clock, real videos, scripted faults.

Tests run the bot's client against it; ``seedance-bot sandbox`` lets a human try the bot
without spending anything. It speaks the API the way ``shared/reference/runcomfy-api.md``
describes it, including its error bodies.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, Self, get_args

import aiohttp
from aiohttp import web
from PIL import Image, ImageOps, UnidentifiedImageError

from sandbox.video import output_size, render_clip

log = logging.getLogger(__name__)

# The provider's paths, copied from RunComfy's API page (seeds/) rather than imported from the
# bot's client: a wrong path in the client must fail against this emulator, not be mirrored.
MODEL_ID = "bytedance/seedance-1-0/lite/image-to-video"
MODEL_PATH = f"/v1/models/{MODEL_ID}"
PROMPT_MAX_CHARS = 1900
RESOLUTIONS = ("480p", "720p", "1080p")
DURATIONS = (5, 10)
# "file_size_mb < 30", with 30 MB read as 30,000,000 bytes (the stricter reading).
IMAGE_MAX_BYTES = 30_000_000
# Upstream price: $1.8 per million tokens, tokens = width * height * 24 * seconds / 1024.
USD_PER_TOKEN = 1.8 / 1_000_000

Route = Literal["submit", "status", "result", "cancel", "model", "video", "asset"]
FaultKind = Literal["http", "error_code", "json", "drop", "hang"]
JobOutcome = Literal[
    "completed", "failed", "unknown_state", "missing_video", "video_404", "videos_list"
]

# Documented error codes by HTTP status; statuses without one get a bare message, as a
# gateway in front of the API would send.
_DEFAULT_CODES = {
    400: 400001,
    401: 400004,
    402: 400002,
    403: 403001,
    404: 404001,
    422: 422001,
    500: 500001,
}
_DEFAULT_MESSAGES = {
    400: "Invalid model id",
    401: "Invalid or expired API token",
    402: "Insufficient balance",
    403: "The request belongs to another account",
    404: "Unknown or expired request id",
    408: "Request timeout",
    422: "Validation error",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Fault:
    """One scripted misbehaviour of a route, used up after ``times`` requests.

    Kinds: ``http`` answers ``status`` with an error body (``error_code``/``message``
    default to the documented ones) and ``headers`` such as Retry-After; ``error_code``
    answers HTTP 200 with an error body; ``json`` answers ``status`` with ``body`` verbatim;
    ``drop`` closes the connection without answering; ``hang`` stalls for ``seconds`` and
    then handles the request normally (so a hung submit still creates the job).
    """

    route: Route
    kind: FaultKind
    times: int = 1
    status: int = 500
    error_code: int | None = None
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    seconds: float = 60.0


class Faults:
    """The scripted faults, consumed first come first served per route."""

    def __init__(self) -> None:
        self._pending: list[Fault] = []

    def add(
        self,
        *,
        route: Route,
        kind: FaultKind,
        times: int = 1,
        status: int | None = None,
        error_code: int | None = None,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        seconds: float = 60.0,
    ) -> Fault:
        """Make the next ``times`` requests to ``route`` misbehave as ``kind``."""
        if route not in get_args(Route):
            raise ValueError(f"unknown route {route!r}")
        if kind not in get_args(FaultKind):
            raise ValueError(f"unknown fault kind {kind!r}")
        if times < 1:
            raise ValueError("times must be at least 1")
        if kind == "error_code" and error_code is None:
            raise ValueError("an error_code fault needs error_code")
        default_status = 200 if kind in ("error_code", "json") else 500
        fault = Fault(
            route=route,
            kind=kind,
            times=times,
            status=default_status if status is None else status,
            error_code=error_code,
            message=message,
            headers=dict(headers or {}),
            body=body,
            seconds=seconds,
        )
        self._pending.append(fault)
        return fault

    def take(self, route: Route) -> Fault | None:
        """The fault that applies to this request to ``route``, if any, using one of its times."""
        for fault in self._pending:
            if fault.route == route:
                fault.times -= 1
                if fault.times == 0:
                    self._pending.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self._pending.clear()

    def __len__(self) -> int:
        return len(self._pending)


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

    @property
    def terminal(self) -> bool:
        return self.status not in ("in_queue", "in_progress")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]


class _JobFailure(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", "job failed"))
        self.error = error


class RunComfyEmulator:
    """RunComfy's Model API on a local port (or embedded through ``app``).

    ``async with RunComfyEmulator(token="t", queue_seconds=0, run_seconds=0) as emu:``
    then point the client at ``emu.base_url``.
    """

    def __init__(
        self,
        *,
        token: str,
        queue_seconds: float = 5.0,
        run_seconds: float = 15.0,
        host: str = "127.0.0.1",
        port: int = 0,
        video_size: tuple[int, int] | None = None,
        fps: int = 24,
        queue_depth: int = 3,
    ) -> None:
        self.token = token
        self.queue_seconds = queue_seconds
        self.run_seconds = run_seconds
        self.host = host
        self.port = port
        self.video_size = video_size
        self.fps = fps
        self.queue_depth = queue_depth
        self.faults = Faults()
        self.jobs: dict[str, EmulatedJob] = {}
        self.requests: list[RecordedRequest] = []
        self.submitted: list[dict[str, Any]] = []
        # Set by start(); an application embedding ``app`` elsewhere sets it to its own URL.
        self.base_url = ""
        self._plans: deque[JobPlan] = deque()
        self._assets: dict[str, tuple[bytes, str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.app = self._build_app()

    @property
    def calls(self) -> list[tuple[str, str]]:
        """(method, path) of every request received, in order."""
        return [(r.method, r.path) for r in self.requests]

    def count(self, method: str, path: str) -> int:
        """How many ``method`` requests to ``path`` arrived (faulted and refused ones too)."""
        return sum(1 for r in self.requests if r.method == method and r.path == path)

    def plan_next_job(
        self,
        outcome: JobOutcome = "completed",
        *,
        queue_seconds: float | None = None,
        run_seconds: float | None = None,
        error: Any = None,
        state: str = "exploded",
        video_bytes: bytes | None = None,
    ) -> JobPlan:
        """Script the next accepted job (plans queue up in order)."""
        if outcome not in get_args(JobOutcome):
            raise ValueError(f"unknown job outcome {outcome!r}")
        plan = JobPlan(
            outcome=outcome,
            queue_seconds=queue_seconds,
            run_seconds=run_seconds,
            error=error,
            state=state,
            video_bytes=video_bytes,
        )
        self._plans.append(plan)
        return plan

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds; it is checked whenever a job appears or moves."""
        while True:
            changed = self._changed
            if predicate():
                return
            await changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def add_asset(self, name: str, data: bytes, content_type: str = "image/png") -> str:
        """Serve ``data`` at ``/assets/{name}`` (no auth, like a public CDN); return its URL."""
        self._assets[name] = (data, content_type)
        return f"{self.base_url}/assets/{name}"

    async def start(self) -> None:
        """Listen on host:port (port 0 picks a free one) and set ``base_url``."""
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{shown}:{port}"
        log.info("RunComfy emulator listening on %s", self.base_url)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- application ---------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[_json_errors])
        app.router.add_post("/v1/models/{model_id:.+}", self._endpoint("submit", self._submit))
        app.router.add_get("/v1/models/{model_id:.+}", self._endpoint("model", self._model))
        app.router.add_get(
            "/v1/requests/{request_id}/status", self._endpoint("status", self._status)
        )
        app.router.add_get(
            "/v1/requests/{request_id}/result", self._endpoint("result", self._result)
        )
        app.router.add_post(
            "/v1/requests/{request_id}/cancel", self._endpoint("cancel", self._cancel)
        )
        app.router.add_get(
            "/files/{request_id}.mp4", self._endpoint("video", self._video, auth=False)
        )
        app.router.add_get("/assets/{name}", self._endpoint("asset", self._asset, auth=False))
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_startup(self, app: web.Application) -> None:
        self._closing.clear()
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def _on_shutdown(self, app: web.Application) -> None:
        # Release hung handlers and stop jobs (which may be fetching from this very
        # server) so that the server can stop at once.
        self._closing.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _endpoint(self, route: Route, handler: Handler, *, auth: bool = True) -> Handler:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            self.requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.path,
                    query=request.query_string,
                    headers=dict(request.headers),
                )
            )
            # Take the whole body first, as a real server would before a stall or a crash.
            await request.read()
            fault = self.faults.take(route)
            if fault is not None:
                answer = await self._apply_fault(fault, request)
                if answer is not None:
                    return answer
            if auth and request.headers.get("Authorization") != f"Bearer {self.token}":
                return _error(401)
            return await handler(request)

        return endpoint

    async def _apply_fault(self, fault: Fault, request: web.Request) -> web.StreamResponse | None:
        log.info("Emulator fault %s on %s %s", fault.kind, request.method, request.path)
        if fault.kind == "hang":
            try:
                await asyncio.wait_for(self._closing.wait(), fault.seconds)
            except TimeoutError:
                return None
            return _drop(request)
        if fault.kind == "drop":
            return _drop(request)
        if fault.kind == "json":
            return web.json_response(fault.body, status=fault.status, headers=fault.headers)
        if fault.kind == "error_code":
            return _error(200, fault.error_code, fault.message, headers=fault.headers)
        return _error(fault.status, fault.error_code, fault.message, headers=fault.headers)

    # -- API -----------------------------------------------------------------------------

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["model_id"] != MODEL_ID:
            return _error(400)
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        problems = _validate(payload)
        if problems:
            return _error(422, detail=problems)
        assert isinstance(payload, dict)
        job = self._new_job(payload)
        origin = str(request.url.origin())
        base = f"{origin}/v1/requests/{job.request_id}"
        return web.json_response(
            {
                "request_id": job.request_id,
                "status_url": f"{base}/status",
                "result_url": f"{base}/result",
                "cancel_url": f"{base}/cancel",
            }
        )

    async def _model(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["model_id"] != MODEL_ID:
            return _error(400)
        return web.json_response(
            {
                "model_id": MODEL_ID,
                "base_price_usd": round(_cost_usd("480p", 5), 4),
                "price_unit": "per 5 s video at 480p",
                "pricing_note": "720p costs about twice and 1080p about five times as much; "
                "10 s costs twice 5 s.",
            }
        )

    async def _status(self, request: web.Request) -> web.StreamResponse:
        job = self.jobs.get(request.match_info["request_id"])
        if job is None:
            return _error(404)
        body: dict[str, Any] = {"request_id": job.request_id, "status": job.status}
        if job.status == "in_queue":
            body["queue_position"] = self._queue_position(job)
        return web.json_response(body)

    async def _result(self, request: web.Request) -> web.StreamResponse:
        job = self.jobs.get(request.match_info["request_id"])
        if job is None:
            return _error(404)
        body: dict[str, Any] = {
            "request_id": job.request_id,
            "status": job.status,
            "created_at": job.created_at.isoformat(),
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            "error": job.error,
        }
        if job.status == "in_queue":
            body["queue_position"] = self._queue_position(job)
        if job.status == "completed":
            body["output"] = self._output(job, str(request.url.origin()))
            if request.query.get("include_cost", "").lower() == "true":
                body["cost"] = round(
                    _cost_usd(job.payload.get("resolution", "480p"), job.payload["duration"]), 4
                )
        return web.json_response(body)

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        job = self.jobs.get(request.match_info["request_id"])
        if job is None:
            return _error(404)
        outcome = "not_cancellable"
        if job.status == "in_queue":
            if job.task is not None:
                job.task.cancel()
            self._finish(job, "cancelled")
            outcome = "cancelled"
        return web.json_response(
            {"request_id": job.request_id, "status": job.status, "outcome": outcome}
        )

    async def _video(self, request: web.Request) -> web.StreamResponse:
        job = self.jobs.get(request.match_info["request_id"])
        if job is None or job.video is None or job.plan.outcome == "video_404":
            return _error(404)
        return web.Response(body=job.video, content_type="video/mp4")

    async def _asset(self, request: web.Request) -> web.StreamResponse:
        asset = self._assets.get(request.match_info["name"])
        if asset is None:
            return _error(404)
        data, content_type = asset
        return web.Response(body=data, content_type=content_type)

    # -- jobs ----------------------------------------------------------------------------

    def _new_job(self, received: dict[str, Any]) -> EmulatedJob:
        payload = {"resolution": "480p", "duration": 5, **received}
        plan = self._plans.popleft() if self._plans else JobPlan()
        queue_seconds = self.queue_seconds if plan.queue_seconds is None else plan.queue_seconds
        run_seconds = self.run_seconds if plan.run_seconds is None else plan.run_seconds
        loop = asyncio.get_running_loop()
        job = EmulatedJob(
            request_id=secrets.token_hex(16),
            payload=payload,
            plan=plan,
            created_at=datetime.now(UTC),
            queue_seconds=queue_seconds,
            run_seconds=run_seconds,
            queued_until=loop.time() + queue_seconds,
        )
        self.jobs[job.request_id] = job
        self.submitted.append(received)
        self._notify()
        job.task = asyncio.create_task(self._run(job), name=f"emulated-job-{job.request_id}")
        self._tasks.add(job.task)
        job.task.add_done_callback(self._task_done)
        log.info("Emulated job %s accepted (%s)", job.request_id, plan.outcome)
        return job

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("Emulated job task crashed", exc_info=task.exception())

    async def _run(self, job: EmulatedJob) -> None:
        await asyncio.sleep(job.queue_seconds)
        self._set_status(job, "in_progress")
        loop = asyncio.get_running_loop()
        started = loop.time()
        outcome = job.plan.outcome
        if outcome not in ("failed", "unknown_state", "missing_video", "video_404"):
            try:
                job.video = await self._produce(job)
            except _JobFailure as failure:
                await asyncio.sleep(max(0.0, job.run_seconds - (loop.time() - started)))
                job.error = failure.error
                self._finish(job, "failed")
                return
        await asyncio.sleep(max(0.0, job.run_seconds - (loop.time() - started)))
        if outcome == "failed":
            job.error = job.plan.error or {
                "code": "generation_failed",
                "message": "The model could not generate this video.",
            }
            self._finish(job, "failed")
        elif outcome == "unknown_state":
            self._set_status(job, job.plan.state)
        else:
            self._finish(job, "completed")

    def _finish(self, job: EmulatedJob, status: str) -> None:
        job.finished_at = datetime.now(UTC)
        self._set_status(job, status)

    def _set_status(self, job: EmulatedJob, status: str) -> None:
        job.status = status
        log.info("Emulated job %s %s", job.request_id, status)
        self._notify()

    async def _produce(self, job: EmulatedJob) -> bytes:
        if job.plan.video_bytes is not None:
            return job.plan.video_bytes
        resolution = str(job.payload["resolution"])
        first = await self._fetch_image(job.payload["first_frame_image_url"], "first_frame")
        last_url = job.payload.get("last_frame_image_url")
        last = None
        # The schema says so: the last frame has no effect at 1080p.
        if isinstance(last_url, str) and resolution != "1080p":
            last = await self._fetch_image(last_url, "last_frame")
        return await asyncio.to_thread(
            render_clip,
            first,
            last,
            resolution=resolution,
            duration=int(job.payload["duration"]),
            fps=self.fps,
            size=self.video_size,
        )

    async def _fetch_image(self, url: str, field_name: str) -> bytes:
        assert self._http is not None
        try:
            async with self._http.get(url) as resp:
                if resp.status != 200:
                    raise _JobFailure(
                        _fetch_error(field_name, f"fetching the image answered HTTP {resp.status}")
                    )
                data = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    data += chunk
                    if len(data) >= IMAGE_MAX_BYTES:
                        break
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise _JobFailure(
                _fetch_error(field_name, f"the image could not be fetched ({type(exc).__name__})")
            ) from exc
        if len(data) >= IMAGE_MAX_BYTES:
            raise _JobFailure(_fetch_error(field_name, "File size must be less than 30 MB."))
        problem = await asyncio.to_thread(_image_problem, bytes(data))
        if problem:
            raise _JobFailure(_fetch_error(field_name, problem))
        return bytes(data)

    def _queue_position(self, job: EmulatedJob) -> int:
        remaining = job.queued_until - asyncio.get_running_loop().time()
        if job.queue_seconds <= 0 or remaining <= 0:
            return 1
        return max(1, math.ceil(remaining / job.queue_seconds * self.queue_depth))

    def _output(self, job: EmulatedJob, origin: str) -> dict[str, Any]:
        url = f"{origin}/files/{job.request_id}.mp4"
        if job.plan.outcome == "missing_video":
            return {}
        if job.plan.outcome == "videos_list":
            return {"videos": [url]}
        return {"video": url}


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown routes and methods answer with the API's JSON error body too."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, message=exc.reason)


def _error(
    status: int,
    code: int | None = None,
    message: str | None = None,
    *,
    detail: Any = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    code = _DEFAULT_CODES.get(status) if code is None else code
    text = message or _DEFAULT_MESSAGES.get(status, "Error")
    body: dict[str, Any] = (
        {"message": text} if code is None else {"error_code": code, "error_message": text}
    )
    if detail is not None:
        body["detail"] = detail
    return web.json_response(body, status=status, headers=dict(headers or {}))


def _drop(request: web.Request) -> web.Response:
    if request.transport is not None:
        request.transport.close()
    # Nothing reaches the client: the transport is already closed.
    return web.Response(status=204)


def _validate(payload: Any) -> list[dict[str, Any]]:
    """Problems with a submit body, by the model's input schema; empty when valid."""
    if not isinstance(payload, dict):
        return [_problem([], "Input should be a valid JSON object", "model_type")]
    problems = []
    for name in ("prompt", "first_frame_image_url"):
        if name not in payload:
            problems.append(_problem([name], "Field required", "missing"))
    for name in ("prompt", "first_frame_image_url", "last_frame_image_url"):
        if name in payload and not isinstance(payload[name], str):
            problems.append(_problem([name], "Input should be a valid string", "string_type"))
    prompt = payload.get("prompt")
    if isinstance(prompt, str) and len(prompt) > PROMPT_MAX_CHARS:
        problems.append(
            _problem(
                ["prompt"],
                f"String should have at most {PROMPT_MAX_CHARS} characters",
                "string_too_long",
            )
        )
    if "resolution" in payload and payload["resolution"] not in RESOLUTIONS:
        problems.append(
            _problem(["resolution"], "Input should be '480p', '720p' or '1080p'", "enum")
        )
    duration = payload.get("duration", 5)
    if isinstance(duration, bool) or not isinstance(duration, int) or duration not in DURATIONS:
        problems.append(_problem(["duration"], "Input should be 5 or 10", "enum"))
    return problems


def _problem(loc: list[str], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body", *loc], "msg": msg, "type": kind}


def _fetch_error(field_name: str, message: str) -> dict[str, Any]:
    return {"code": "invalid_input", "field": f"{field_name}_image_url", "message": message}


def _image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return ImageOps.exif_transpose(image).size


def _image_problem(data: bytes) -> str | None:
    """The schema's validation_error for an image, or None when it passes."""
    try:
        width, height = _image_size(data)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return "The uploaded file is not a supported image."
    if not (width < 6000 and height < 6000):
        return "The uploaded image width and height must not exceed 6000 pixels."
    if not (width > 300 and height > 300):
        return "The uploaded image width and height must not be less than 300 pixels."
    if not (0.4 < width / height < 2.5):
        return "The aspect ratio range should be between 0.4 and 2.5."
    return None


def _cost_usd(resolution: str, duration: int) -> float:
    width, height = output_size(resolution, 16, 9)
    return width * height * 24 * duration / 1024 * USD_PER_TOKEN
