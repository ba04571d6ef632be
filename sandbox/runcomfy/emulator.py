"""The emulator itself: the API's routes, the job clock, and the rendered videos."""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, get_args

import aiohttp
from aiohttp import web

from sandbox.runcomfy.faults import Fault, Faults, Route
from sandbox.runcomfy.inputs import (
    MAX_REQUEST_BYTES,
    MODEL_ID,
    cost_usd,
    decode_inline_images,
    validate,
)
from sandbox.runcomfy.jobs import (
    EmulatedJob,
    JobFailure,
    JobOutcome,
    JobPlan,
    RecordedRequest,
    check_image,
    fetch_image,
    job_output,
)
from sandbox.runcomfy.responses import Handler, drop, error, json_errors, listen, misbehave
from sandbox.video import render_clip

log = logging.getLogger(__name__)


class RunComfyEmulator:
    """RunComfy's Model API on a local port, its file CDN on another (or embedded through
    ``app`` and ``cdn_app``).

    ``async with RunComfyEmulator(token="t", queue_seconds=0, run_seconds=0) as emu:``
    then point the client at ``emu.base_url``; output links point at ``emu.cdn_url``.
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
        submit_latency: float = 0.0,
        output_content_type: str = "binary/octet-stream",
        output_redirect: bool = False,
    ) -> None:
        self.token = token
        self.queue_seconds = queue_seconds
        self.run_seconds = run_seconds
        self.host = host
        self.port = port
        self.video_size = video_size
        self.fps = fps
        self.queue_depth = queue_depth
        # Seconds the submit takes to answer. RunComfy's own ComfyUI nodes give the paid POST
        # a 90 s read timeout against 20 s for polls (runcomfy/client.py), so a slow submit
        # is normal there; 0 keeps tests fast. The job is created after the wait whether or
        # not the client is still listening, as a server that does not notice it left would.
        self.submit_latency = submit_latency
        # Output files live on RunComfy's CDN, another origin than the API (runcomfy-cli
        # src/download.rs lists its hosts: playgrounds-storage-public.runcomfy.net,
        # serverless-api-storage.runcomfy.net, files.runcomfy.net), so here they get a
        # listener of their own. RunComfy's nodes accept video/*, application/octet-stream
        # and binary/octet-stream for them (runcomfy/async_media.py, _download).
        # binary/octet-stream is the default: it is what S3-style storage, which those
        # bucket-named hosts suggest, answers for an object stored without a type, and
        # nobody lists that non-standard type without having met it.
        self.output_content_type = output_content_type
        # Whether the output URL answers 302 to a signed one first. Off by default: the
        # nodes download with allow_redirects=False and want a 200 (async_media.py), so the
        # real URLs answer directly; on, it checks a client that does follow (as the CLI does).
        self.output_redirect = output_redirect
        self.faults = Faults()
        self.jobs: dict[str, EmulatedJob] = {}
        self.requests: list[RecordedRequest] = []
        self.submitted: list[dict[str, Any]] = []
        # Set by start(); an application embedding ``app`` elsewhere sets it to its own URL.
        self.base_url = ""
        # The CDN's URL, also set by start(); an embedding application serves ``cdn_app``.
        self.cdn_url = ""
        self._plans: deque[JobPlan] = deque()
        self._assets: dict[str, tuple[bytes, str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._cdn_runner: web.AppRunner | None = None
        self.app = self._build_app()
        self.cdn_app = self._build_cdn_app()

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
        """Listen on host:port (port 0 picks a free one) and set ``base_url``; the CDN
        listens on another free port of the same host and sets ``cdn_url``."""
        self._runner, self.base_url = await listen(self.app, self.host, self.port)
        self._cdn_runner, self.cdn_url = await listen(self.cdn_app, self.host, 0)
        log.info("RunComfy emulator on %s, its file CDN on %s", self.base_url, self.cdn_url)

    async def close(self) -> None:
        # Release hung handlers on both listeners before either waits for them.
        self._closing.set()
        for runner in (self._cdn_runner, self._runner):
            if runner is not None:
                await runner.cleanup()
        self._runner = self._cdn_runner = None

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
        app = web.Application(middlewares=[json_errors], client_max_size=MAX_REQUEST_BYTES)
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
        app.router.add_get("/assets/{name}", self._endpoint("asset", self._asset, auth=False))
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    def _build_cdn_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(
            "/files/{request_id}.mp4", self._endpoint("video", self._video, auth=False)
        )
        app.router.add_get(
            "/signed/{request_id}.mp4", self._endpoint("video", self._signed_video, auth=False)
        )
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
                    at=time.time(),
                )
            )
            # Take the whole body first, as a real server would before a stall or a crash.
            try:
                await request.read()
            except web.HTTPRequestEntityTooLarge:
                return error(413, detail={"max_bytes": MAX_REQUEST_BYTES})
            fault = self.faults.take(route)
            if fault is not None:
                answer = await self._apply_fault(fault, request)
                if answer is not None:
                    return answer
            if auth and request.headers.get("Authorization") != f"Bearer {self.token}":
                return error(401)
            return await handler(request)

        return endpoint

    async def _apply_fault(self, fault: Fault, request: web.Request) -> web.StreamResponse | None:
        log.info("Emulator fault %s on %s %s", fault.kind, request.method, request.path)
        return await misbehave(fault, request, self._closing)

    # -- API -----------------------------------------------------------------------------

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        if self.submit_latency > 0:
            try:
                await asyncio.wait_for(self._closing.wait(), self.submit_latency)
            except TimeoutError:
                pass
            else:
                return drop(request)
        if request.match_info["model_id"] != MODEL_ID:
            return error(400)
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        problems = validate(payload)
        if problems:
            return error(422, detail=problems)
        assert isinstance(payload, dict)
        inline, problems = await asyncio.to_thread(decode_inline_images, payload)
        if problems:
            return error(422, detail=problems)
        job = self._new_job(payload, inline)
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
            return error(400)
        # RunComfy's ComfyUI nodes accept only price_unit "second" or "output" and read
        # base_price_usd as the price of one unit (runcomfy/pricing.py, parse_price); the
        # per-second price here is the 480p one, so 5 s at 480p costs what include_cost says.
        return web.json_response(
            {
                "model_id": MODEL_ID,
                "base_price_usd": round(cost_usd("480p", 1), 4),
                "price_unit": "second",
                "pricing_note": "Per second of video at 480p; 720p costs about twice and "
                "1080p about five times as much.",
            }
        )

    async def _status(self, request: web.Request) -> web.StreamResponse:
        job = self.jobs.get(request.match_info["request_id"])
        if job is None:
            return error(404)
        body: dict[str, Any] = {"request_id": job.request_id, "status": job.status}
        if job.status == "in_queue":
            body["queue_position"] = self._queue_position(job)
        return web.json_response(body)

    async def _result(self, request: web.Request) -> web.StreamResponse:
        job = self.jobs.get(request.match_info["request_id"])
        if job is None:
            return error(404)
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
            body["output"] = job_output(job, self.cdn_url)
            if request.query.get("include_cost", "").lower() == "true":
                body["cost"] = round(
                    cost_usd(job.payload.get("resolution", "480p"), job.payload["duration"]), 4
                )
        return web.json_response(body)

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        job = self.jobs.get(request.match_info["request_id"])
        if job is None:
            return error(404)
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
        job = self._finished_video(request)
        if job is None:
            return web.Response(status=404, text="Not Found")
        if self.output_redirect:
            expires = int(datetime.now(UTC).timestamp()) + 3600
            signature = secrets.token_hex(16)
            signed = request.url.with_path(f"/signed/{job.request_id}.mp4").with_query(
                {"Expires": str(expires), "Signature": signature}
            )
            return web.Response(status=302, headers={"Location": str(signed)})
        return self._video_file(job)

    async def _signed_video(self, request: web.Request) -> web.StreamResponse:
        job = self._finished_video(request)
        if job is None:
            return web.Response(status=404, text="Not Found")
        return self._video_file(job)

    def _finished_video(self, request: web.Request) -> EmulatedJob | None:
        job = self.jobs.get(request.match_info["request_id"])
        if job is None or job.video is None or job.plan.outcome == "video_404":
            return None
        return job

    def _video_file(self, job: EmulatedJob) -> web.Response:
        assert job.video is not None
        return web.Response(body=job.video, headers={"Content-Type": self.output_content_type})

    async def _asset(self, request: web.Request) -> web.StreamResponse:
        asset = self._assets.get(request.match_info["name"])
        if asset is None:
            return error(404)
        data, content_type = asset
        return web.Response(body=data, content_type=content_type)

    # -- jobs ----------------------------------------------------------------------------

    def _new_job(self, received: dict[str, Any], inline: dict[str, bytes]) -> EmulatedJob:
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
            inline_images=inline,
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
            except JobFailure as failure:
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
        first = await self._image(job, "first_frame")
        last = None
        # The schema says so: the last frame has no effect at 1080p.
        if isinstance(job.payload.get("last_frame_image_url"), str) and resolution != "1080p":
            last = await self._image(job, "last_frame")
        return await asyncio.to_thread(
            render_clip,
            first,
            last,
            resolution=resolution,
            duration=int(job.payload["duration"]),
            fps=self.fps,
            size=self.video_size,
        )

    async def _image(self, job: EmulatedJob, field_name: str) -> bytes:
        """A frame, inline or fetched, put through the schema's checks either way."""
        key = f"{field_name}_image_url"
        data = job.inline_images.get(key)
        if data is None:
            assert self._http is not None
            data = await fetch_image(self._http, job.payload[key], field_name)
        await check_image(data, field_name)
        return data

    def _queue_position(self, job: EmulatedJob) -> int:
        remaining = job.queued_until - asyncio.get_running_loop().time()
        if job.queue_seconds <= 0 or remaining <= 0:
            return 1
        return max(1, math.ceil(remaining / job.queue_seconds * self.queue_depth))
