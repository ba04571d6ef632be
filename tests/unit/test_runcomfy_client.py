"""The RunComfy client against the local emulator: the documented API, its faults included."""

from __future__ import annotations

import asyncio
import io
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
from PIL import Image

from bot.media.download import DownloadError, download_video
from bot.runcomfy.client import (
    MODEL_PATH,
    CancelOutcome,
    RunComfyClient,
    Submission,
    VideoInput,
)
from bot.runcomfy.errors import (
    ApiError,
    AuthError,
    DeadlineExceededError,
    InputRejectedError,
    NoBalanceError,
    NotFoundError,
    RateLimitedError,
    RunComfyError,
    TransportError,
    UnknownStateError,
    UnknownSubmissionError,
)
from bot.runcomfy.states import (
    Cancelled,
    Completed,
    Failed,
    InProgress,
    InQueue,
    ProviderState,
    is_terminal,
    parse_state,
)
from sandbox.runcomfy import RunComfyEmulator

TOKEN = "rc-SECRET-token-4f9a0c"


class Sleeps:
    """An injected sleep that records each delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


class RealSleeps(Sleeps):
    """Records delays and really sleeps, for tests about the deadline."""

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(delay)


@pytest.fixture
async def emu() -> AsyncIterator[RunComfyEmulator]:
    async with RunComfyEmulator(
        token=TOKEN, queue_seconds=0, run_seconds=0, video_size=(128, 72), fps=8
    ) as emulator:
        yield emulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(http: aiohttp.ClientSession, emu: RunComfyEmulator, sleeps: Sleeps) -> RunComfyClient:
    return make_client(http, emu.base_url, sleeps)


def make_client(
    http: aiohttp.ClientSession, base_url: str, sleep: Sleeps, **kwargs: Any
) -> RunComfyClient:
    options: dict[str, Any] = {
        "connect_timeout": 2.0,
        "read_timeout": 0.5,
        "submit_timeout": 0.5,
        **kwargs,
    }
    return RunComfyClient(http, token=TOKEN, base_url=base_url, sleep=sleep, **options)


def png(width: int, height: int, colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def video_input(emu: RunComfyEmulator, **changes: Any) -> VideoInput:
    fields: dict[str, Any] = {
        "prompt": "a red balloon drifts upward",
        "first_frame_image_url": emu.add_asset("first.png", png(640, 360)),
        "last_frame_image_url": None,
        "resolution": "480p",
        "duration": 5,
        **changes,
    }
    return VideoInput(**fields)


async def until_done(client: RunComfyClient, sub: Submission) -> ProviderState:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while True:
        state = await client.poll(sub, deadline=deadline)
        if is_terminal(state):
            return state
        await asyncio.sleep(0.02)


async def until_status(emu: RunComfyEmulator, request_id: str, status: str) -> None:
    async with asyncio.timeout(20):
        await emu.wait_until(lambda: emu.jobs[request_id].status == status)


def submits(emu: RunComfyEmulator) -> int:
    return emu.count("POST", MODEL_PATH)


# -- the happy path ------------------------------------------------------------------------


async def test_submit_poll_and_download_a_video(
    client: RunComfyClient,
    emu: RunComfyEmulator,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    inp = video_input(emu)
    sub = await client.submit(inp)

    state = await until_done(client, sub)

    assert isinstance(state, Completed)
    assert state.video_url == f"{emu.cdn_url}/files/{sub.request_id}.mp4"
    assert state.cost_usd == pytest.approx(0.0875, abs=0.001)
    assert emu.submitted == [inp.to_payload()]
    assert submits(emu) == 1
    dest = tmp_path / "out.mp4"
    size = await download_video(
        http, state.video_url, dest, base_url=emu.base_url, max_bytes=5_000_000
    )
    assert size == dest.stat().st_size > 0
    with av.open(str(dest)) as container:
        assert container.streams.video[0].codec_context.name == "h264"


async def test_submission_uses_the_returned_urls(
    client: RunComfyClient, emu: RunComfyEmulator
) -> None:
    sub = await client.submit(video_input(emu))

    base = f"{emu.base_url}/v1/requests/{sub.request_id}"
    assert (sub.status_url, sub.result_url, sub.cancel_url) == (
        f"{base}/status",
        f"{base}/result",
        f"{base}/cancel",
    )


async def test_the_token_goes_to_the_api_but_not_to_the_file_host(
    client: RunComfyClient, emu: RunComfyEmulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    sub = await client.submit(video_input(emu))
    state = await until_done(client, sub)
    assert isinstance(state, Completed) and state.video_url
    await download_video(
        http, state.video_url, tmp_path / "v.mp4", base_url=emu.base_url, max_bytes=10**7
    )

    for request in emu.requests:
        auth = request.headers.get("Authorization")
        if request.path.startswith("/v1/"):
            assert auth == f"Bearer {TOKEN}"
        else:
            assert auth is None


async def test_last_frame_is_sent_only_when_given(emu: RunComfyEmulator) -> None:
    without = video_input(emu).to_payload()
    with_last = video_input(emu, last_frame_image_url="https://cdn.example/l.png").to_payload()

    assert "last_frame_image_url" not in without
    assert with_last["last_frame_image_url"] == "https://cdn.example/l.png"
    assert without == {
        "prompt": "a red balloon drifts upward",
        "first_frame_image_url": without["first_frame_image_url"],
        "resolution": "480p",
        "duration": 5,
    }


# -- queue, progress and cancel ----------------------------------------------------------


async def test_a_queued_job_reports_its_position_and_can_be_cancelled(
    client: RunComfyClient, emu: RunComfyEmulator
) -> None:
    emu.plan_next_job(queue_seconds=60)
    sub = await client.submit(video_input(emu))

    assert await client.status(sub) == InQueue(position=3)
    assert await client.result(sub) == InQueue(position=3)
    assert await client.cancel(sub) is CancelOutcome.CANCELLED
    assert await client.status(sub) == Cancelled()
    assert await client.poll(sub, deadline=asyncio.get_running_loop().time() + 5) == Cancelled()


async def test_a_running_job_cannot_be_cancelled(
    client: RunComfyClient, emu: RunComfyEmulator
) -> None:
    emu.plan_next_job(queue_seconds=0, run_seconds=60)
    sub = await client.submit(video_input(emu))
    await until_status(emu, sub.request_id, "in_progress")

    assert await client.cancel(sub) is CancelOutcome.NOT_CANCELLABLE
    assert await client.status(sub) == InProgress()


async def test_a_finished_job_is_not_cancellable(
    client: RunComfyClient, emu: RunComfyEmulator
) -> None:
    sub = await client.submit(video_input(emu))
    await until_done(client, sub)

    assert await client.cancel(sub) is CancelOutcome.NOT_CANCELLABLE


async def test_cancel_with_an_unexpected_answer_means_it_may_still_run(
    client: RunComfyClient, emu: RunComfyEmulator
) -> None:
    sub = await client.submit(video_input(emu))
    emu.faults.add(route="cancel", kind="json", body={"request_id": sub.request_id})

    assert await client.cancel(sub) is CancelOutcome.NOT_CANCELLABLE


# -- job outcomes --------------------------------------------------------------------------


async def test_a_failed_job_carries_the_providers_error(
    client: RunComfyClient, emu: RunComfyEmulator
) -> None:
    emu.plan_next_job("failed", error={"code": "content_policy", "message": "blocked"})
    sub = await client.submit(video_input(emu))

    state = await until_done(client, sub)

    assert isinstance(state, Failed)
    assert "content_policy" in state.error
    assert "blocked" in state.error


async def test_an_unknown_state_stops_polling_with_the_request_id(
    client: RunComfyClient, emu: RunComfyEmulator, sleeps: Sleeps
) -> None:
    emu.plan_next_job("unknown_state", state="quantum_superposition")
    sub = await client.submit(video_input(emu))
    await until_status(emu, sub.request_id, "quantum_superposition")
    results_before = emu.count("GET", f"/v1/requests/{sub.request_id}/result")

    with pytest.raises(UnknownStateError) as caught:
        await client.poll(sub, deadline=asyncio.get_running_loop().time() + 5)

    assert caught.value.state == "quantum_superposition"
    assert caught.value.request_id == sub.request_id
    assert sub.request_id in str(caught.value)
    assert emu.count("GET", f"/v1/requests/{sub.request_id}/result") == results_before + 1
    assert sleeps.delays == []


async def test_completed_without_a_video(client: RunComfyClient, emu: RunComfyEmulator) -> None:
    emu.plan_next_job("missing_video")
    sub = await client.submit(video_input(emu))

    state = await until_done(client, sub)

    assert isinstance(state, Completed)
    assert state.video_url is None


async def test_completed_with_a_list_of_videos(
    client: RunComfyClient, emu: RunComfyEmulator
) -> None:
    emu.plan_next_job("videos_list")
    sub = await client.submit(video_input(emu))

    state = await until_done(client, sub)

    assert isinstance(state, Completed)
    assert state.video_url == f"{emu.cdn_url}/files/{sub.request_id}.mp4"


async def test_completed_with_a_video_that_is_gone(
    client: RunComfyClient, emu: RunComfyEmulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    emu.plan_next_job("video_404")
    sub = await client.submit(video_input(emu))
    state = await until_done(client, sub)
    assert isinstance(state, Completed) and state.video_url

    with pytest.raises(DownloadError, match="HTTP 404"):
        await download_video(
            http, state.video_url, tmp_path / "v.mp4", base_url=emu.base_url, max_bytes=10**7
        )
    assert not (tmp_path / "v.mp4").exists()
    assert not (tmp_path / "v.mp4.part").exists()


# -- submit: never retried except after a refusal ------------------------------------------


async def test_rate_limited_submit_is_retried_after_retry_after(
    client: RunComfyClient, emu: RunComfyEmulator, sleeps: Sleeps
) -> None:
    emu.faults.add(route="submit", kind="http", status=429, headers={"Retry-After": "3"}, times=2)

    sub = await client.submit(video_input(emu))

    assert sub.request_id in emu.jobs
    assert submits(emu) == 3
    assert len(emu.jobs) == 1
    assert sleeps.delays == [3.0, 3.0]


async def test_rate_limited_submit_gives_up_after_a_few_tries(
    http: aiohttp.ClientSession, emu: RunComfyEmulator, sleeps: Sleeps
) -> None:
    client = make_client(http, emu.base_url, sleeps, submit_429_retries=2)
    emu.faults.add(route="submit", kind="http", status=429, times=10)

    with pytest.raises(RateLimitedError):
        await client.submit(video_input(emu))

    assert submits(emu) == 3
    assert emu.jobs == {}


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_error_on_submit_is_an_unknown_submission(
    client: RunComfyClient, emu: RunComfyEmulator, sleeps: Sleeps, status: int
) -> None:
    emu.faults.add(route="submit", kind="http", status=status, times=5)

    with pytest.raises(UnknownSubmissionError) as caught:
        await client.submit(video_input(emu))

    assert caught.value.status == status
    assert submits(emu) == 1
    assert sleeps.delays == []


async def test_internal_error_code_in_a_200_submit_is_an_unknown_submission(
    client: RunComfyClient, emu: RunComfyEmulator
) -> None:
    emu.faults.add(route="submit", kind="error_code", error_code=500001)

    with pytest.raises(UnknownSubmissionError):
        await client.submit(video_input(emu))

    assert submits(emu) == 1


async def test_dropped_connection_on_submit_is_an_unknown_submission(
    client: RunComfyClient, emu: RunComfyEmulator
) -> None:
    emu.faults.add(route="submit", kind="drop", times=5)

    with pytest.raises(UnknownSubmissionError):
        await client.submit(video_input(emu))

    assert submits(emu) == 1


async def test_submit_timing_out_is_unknown_though_the_job_may_exist(
    client: RunComfyClient, emu: RunComfyEmulator
) -> None:
    emu.faults.add(route="submit", kind="hang", seconds=0.8)

    with pytest.raises(UnknownSubmissionError):
        await client.submit(video_input(emu))

    assert submits(emu) == 1
    # RunComfy took the job after all: this is why a timed-out submit is never repeated.
    async with asyncio.timeout(10):
        await emu.wait_until(lambda: bool(emu.jobs))
    assert len(emu.submitted) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"status_url": "http://x/status"},
        {"request_id": ""},
        {"request_id": "../../admin"},
        {"request_id": "x" * 129},
        {"request_id": 12345},
        ["not", "an", "object"],
        None,
    ],
)
async def test_submit_answer_without_a_valid_request_id_is_unknown(
    client: RunComfyClient, emu: RunComfyEmulator, body: Any
) -> None:
    emu.faults.add(route="submit", kind="json", body=body)

    with pytest.raises(UnknownSubmissionError) as caught:
        await client.submit(video_input(emu))

    assert caught.value.request_id is None
    assert caught.value.status == 200
    assert submits(emu) == 1


async def test_unreachable_provider_means_nothing_was_submitted(
    http: aiohttp.ClientSession, sleeps: Sleeps, emu: RunComfyEmulator
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client(http, f"http://127.0.0.1:{port}", sleeps)

    with pytest.raises(TransportError) as caught:
        await client.submit(video_input(emu))

    assert not isinstance(caught.value, UnknownSubmissionError)
    assert caught.value.sent is False


async def test_foreign_or_missing_urls_are_replaced_by_standard_ones(
    client: RunComfyClient, emu: RunComfyEmulator
) -> None:
    emu.faults.add(
        route="submit",
        kind="json",
        body={
            "request_id": "req_42-ok",
            "status_url": "https://evil.example/v1/requests/req_42-ok/status",
            "result_url": f"{emu.base_url}/v1/requests/req_42-ok/result",
        },
    )

    sub = await client.submit(video_input(emu))

    base = f"{emu.base_url}/v1/requests/req_42-ok"
    assert sub == Submission("req_42-ok", f"{base}/status", f"{base}/result", f"{base}/cancel")


def test_submission_for_rejects_a_bad_request_id(client: RunComfyClient) -> None:
    with pytest.raises(ValueError):
        client.submission_for("a/b")


# -- typed refusals ----------------------------------------------------------------------


async def test_wrong_token_is_an_auth_error(
    http: aiohttp.ClientSession, emu: RunComfyEmulator, sleeps: Sleeps
) -> None:
    client = RunComfyClient(http, token="wrong-token", base_url=emu.base_url, sleep=sleeps)

    with pytest.raises(AuthError) as caught:
        await client.submit(video_input(emu))

    assert (caught.value.status, caught.value.code) == (401, 400004)
    assert submits(emu) == 1


@pytest.mark.parametrize(
    ("kind", "status", "code", "error"),
    [
        ("http", 402, None, NoBalanceError),
        ("error_code", 200, 400002, NoBalanceError),
        ("error_code", 200, 400004, AuthError),
        ("http", 403, 403001, AuthError),
        ("http", 400, 400001, InputRejectedError),
        ("http", 409, 409999, ApiError),
    ],
)
async def test_refused_submits_raise_typed_errors_once(
    client: RunComfyClient,
    emu: RunComfyEmulator,
    kind: Any,
    status: int,
    code: int | None,
    error: type[ApiError],
) -> None:
    emu.faults.add(route="submit", kind=kind, status=status, error_code=code)

    with pytest.raises(error) as caught:
        await client.submit(video_input(emu))

    assert type(caught.value) is error
    assert caught.value.status == status
    assert submits(emu) == 1
    assert emu.jobs == {}


async def test_invalid_input_is_rejected_with_the_details(
    client: RunComfyClient, emu: RunComfyEmulator
) -> None:
    with pytest.raises(InputRejectedError) as caught:
        await client.submit(video_input(emu, prompt="x" * 1901, duration=7))

    assert (caught.value.status, caught.value.code) == (422, 422001)
    fields = {problem["loc"][-1] for problem in caught.value.detail}
    assert fields == {"prompt", "duration"}


async def test_error_code_in_a_200_status_answer_is_an_error(
    client: RunComfyClient, emu: RunComfyEmulator
) -> None:
    sub = await client.submit(video_input(emu))
    emu.faults.add(route="status", kind="error_code", error_code=404001, message="expired")

    with pytest.raises(NotFoundError) as caught:
        await client.status(sub)

    assert (caught.value.status, caught.value.code) == (200, 404001)
    assert caught.value.request_id == sub.request_id


async def test_error_code_in_a_200_result_answer_is_not_retried(
    client: RunComfyClient, emu: RunComfyEmulator, sleeps: Sleeps
) -> None:
    sub = await client.submit(video_input(emu))
    emu.faults.add(route="result", kind="error_code", error_code=403001)

    with pytest.raises(AuthError):
        await client.poll(sub, deadline=asyncio.get_running_loop().time() + 5)

    assert emu.count("GET", f"/v1/requests/{sub.request_id}/result") == 1
    assert sleeps.delays == []


async def test_unknown_request_id_is_not_found(
    client: RunComfyClient, emu: RunComfyEmulator
) -> None:
    with pytest.raises(NotFoundError):
        await client.result(client.submission_for("no-such-job"))


# -- polling through trouble -------------------------------------------------------------


async def test_poll_rides_out_errors_drops_and_hangs(
    client: RunComfyClient, emu: RunComfyEmulator, sleeps: Sleeps
) -> None:
    sub = await client.submit(video_input(emu))
    await until_status(emu, sub.request_id, "completed")
    emu.faults.add(route="result", kind="http", status=503, headers={"Retry-After": "4"})
    emu.faults.add(route="result", kind="http", status=429, headers={"Retry-After": "9"})
    emu.faults.add(route="result", kind="http", status=500, times=2)
    emu.faults.add(route="result", kind="drop", times=2)
    emu.faults.add(route="result", kind="hang", seconds=30)
    emu.faults.add(route="result", kind="error_code", error_code=500001)
    emu.faults.add(route="result", kind="http", status=408)

    state = await client.poll(sub, deadline=asyncio.get_running_loop().time() + 600)

    assert isinstance(state, Completed)
    assert len(emu.faults) == 0
    # The server's Retry-After wins over the shorter early backoff.
    assert sleeps.delays[:2] == [4.0, 9.0]
    assert all(delay <= 30.0 for delay in sleeps.delays)


async def test_poll_gives_up_when_the_deadline_passes(
    http: aiohttp.ClientSession, emu: RunComfyEmulator
) -> None:
    client = make_client(http, emu.base_url, RealSleeps(), retry_base=0.02)
    sub = await client.submit(video_input(emu))
    emu.faults.add(route="result", kind="http", status=503, times=10_000)

    with pytest.raises(DeadlineExceededError) as caught:
        await client.poll(sub, deadline=asyncio.get_running_loop().time() + 0.3)

    assert caught.value.request_id == sub.request_id
    assert "503" in str(caught.value)
    assert emu.count("GET", f"/v1/requests/{sub.request_id}/result") > 1


async def test_poll_does_not_outlive_the_deadline_inside_a_slow_call(
    http: aiohttp.ClientSession, emu: RunComfyEmulator
) -> None:
    client = make_client(http, emu.base_url, RealSleeps(), read_timeout=30.0)
    sub = await client.submit(video_input(emu))
    emu.faults.add(route="result", kind="hang", seconds=30)

    with pytest.raises(DeadlineExceededError):
        await client.poll(sub, deadline=asyncio.get_running_loop().time() + 0.3)


async def test_poll_after_the_deadline_makes_no_call(
    client: RunComfyClient, emu: RunComfyEmulator
) -> None:
    sub = client.submission_for("late-job")

    with pytest.raises(DeadlineExceededError):
        await client.poll(sub, deadline=asyncio.get_running_loop().time() - 1)

    assert emu.requests == []


# -- the token stays secret ----------------------------------------------------------------


async def test_the_token_never_appears_in_errors_or_logs(
    client: RunComfyClient,
    emu: RunComfyEmulator,
    http: aiohttp.ClientSession,
    sleeps: Sleeps,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = f"rejected header Authorization: Bearer {TOKEN}"
    sub = await client.submit(video_input(emu))
    errors: list[RunComfyError] = []

    async def collect(coro: Any) -> None:
        try:
            await coro
        except RunComfyError as exc:
            errors.append(exc)

    emu.faults.add(route="submit", kind="http", status=500, message=echo)
    await collect(client.submit(video_input(emu)))
    emu.faults.add(route="submit", kind="http", status=422, message=echo, error_code=422001)
    await collect(client.submit(video_input(emu)))
    emu.faults.add(route="submit", kind="json", body={"request_id": None, "echo": echo})
    await collect(client.submit(video_input(emu)))
    emu.faults.add(route="submit", kind="drop")
    await collect(client.submit(video_input(emu)))
    emu.faults.add(route="status", kind="error_code", error_code=400004, message=echo)
    await collect(client.status(sub))
    emu.faults.add(route="result", kind="json", status=401, body={"detail": {"token": TOKEN}})
    await collect(client.result(sub))
    emu.faults.add(route="result", kind="http", status=503, times=10**6, message=echo)
    await collect(client.poll(sub, deadline=asyncio.get_running_loop().time() + 0.2))
    emu.faults.clear()
    emu.faults.add(route="cancel", kind="hang", seconds=5)
    await collect(client.cancel(sub))
    await collect(RunComfyClient(http, token="wrong-" + TOKEN, base_url=emu.base_url).status(sub))

    assert len(errors) == 9
    for exc in errors:
        assert TOKEN not in str(exc)
        assert TOKEN not in repr(exc)
        assert TOKEN not in repr(getattr(exc, "detail", None))
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(client)
    assert any("[redacted]" in str(exc) for exc in errors)


# -- parsing states ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "state"),
    [
        ({"status": "in_queue", "queue_position": 4}, InQueue(4)),
        ({"status": "in_queue"}, InQueue(None)),
        ({"status": "pending"}, InQueue(None)),
        ({"status": "waiting", "queue_position": "2"}, InQueue(2)),
        ({"status": "starting", "queue_position": -1}, InQueue(None)),
        ({"status": "in_queue", "queue_position": 2.0}, InQueue(2)),
        ({"status": "in_queue", "queue_position": True}, InQueue(None)),
        ({"status": "in_progress"}, InProgress()),
        ({"status": "processing"}, InProgress()),
        ({"status": "completed", "output": {"video": "https://c/v.mp4"}}, Completed("https://c/v.mp4")),
        ({"status": "succeeded", "output": {"videos": ["https://c/1.mp4"]}}, Completed("https://c/1.mp4")),
        ({"status": "completed", "output": {"videos": []}}, Completed(None)),
        ({"status": "completed"}, Completed(None)),
        (
            {"status": "completed", "output": {"video": "https://c/v"}, "cost": 0.19},
            Completed("https://c/v", 0.19),
        ),
        ({"status": "completed", "output": {}, "cost": "0.5"}, Completed(None, 0.5)),
        ({"status": "completed", "output": {}, "cost": "free"}, Completed(None, None)),
        ({"status": "cancelled"}, Cancelled()),
        ({"status": "canceled"}, Cancelled()),
        ({"status": "failed", "error": "boom"}, Failed("boom")),
        ({"status": "failed"}, Failed("no error detail given")),
        ({"status": " COMPLETED "}, Completed(None)),
    ],
)  # fmt: skip
def test_parse_state(payload: dict[str, Any], state: ProviderState) -> None:
    assert parse_state(payload) == state


def test_failed_error_json_is_dumped_for_the_logs() -> None:
    state = parse_state({"status": "failed", "error": {"code": 7, "message": "nope"}})

    assert state == Failed('{"code": 7, "message": "nope"}')


@pytest.mark.parametrize("payload", [{"status": "exploded"}, {}, {"status": None}, {"status": 3}])
def test_unknown_states_raise(payload: dict[str, Any]) -> None:
    with pytest.raises(UnknownStateError) as caught:
        parse_state({**payload, "request_id": "job-1"})

    assert caught.value.request_id == "job-1"
