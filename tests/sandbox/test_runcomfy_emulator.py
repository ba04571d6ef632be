"""The local RunComfy emulator: the documented API over the wire, and the videos it renders."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import av
import pytest
from aiohttp import web
from PIL import Image

from bot.runcomfy.client import MODEL_PATH
from sandbox.runcomfy import RunComfyEmulator
from sandbox.video import render_clip

TOKEN = "emulator-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def png(width: int, height: int, colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


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


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    json: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    async with http.request(
        method, url, json=json, headers=AUTH if headers is None else headers
    ) as r:
        assert r.content_type == "application/json"
        return r.status, await r.json()


async def submit(http: aiohttp.ClientSession, emu: RunComfyEmulator, **payload: Any) -> str:
    body = {"prompt": "waves", "first_frame_image_url": emu.add_asset("f.png", png(640, 360))}
    status, answer = await call(http, "POST", emu.base_url + MODEL_PATH, json={**body, **payload})
    assert status == 200, answer
    return str(answer["request_id"])


async def finished(http: aiohttp.ClientSession, emu: RunComfyEmulator, rid: str) -> Any:
    async with asyncio.timeout(20):
        while True:
            _, body = await call(http, "GET", f"{emu.base_url}/v1/requests/{rid}/result")
            if body["status"] not in ("in_queue", "in_progress"):
                return body
            await asyncio.sleep(0.02)


def probe(data: bytes) -> tuple[str, str, int, int, int, list[Image.Image]]:
    """codec, pixel format, width, height, frame count and the first and last frames."""
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        frames = [f.to_image() for f in container.decode(stream)]  # type: ignore[no-untyped-call]
        ctx = stream.codec_context
        return ctx.name, str(ctx.pix_fmt), ctx.width, ctx.height, len(frames), frames


def mean_colour(image: Image.Image) -> tuple[int, ...]:
    small = image.resize((1, 1), Image.Resampling.BOX)
    return tuple(small.getpixel((0, 0)))  # type: ignore[arg-type]


# -- the API -------------------------------------------------------------------------------


async def test_a_job_goes_through_and_its_video_plays(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    rid = await submit(http, emu, duration=5)

    body = await finished(http, emu, rid)

    assert body["status"] == "completed"
    assert body["output"] == {"video": f"{emu.cdn_url}/files/{rid}.mp4"}
    assert body["created_at"] <= body["finished_at"]
    assert "cost" not in body
    async with http.get(body["output"]["video"]) as resp:
        assert resp.status == 200
        assert resp.content_type == "binary/octet-stream"
        data = await resp.read()
    codec, pix_fmt, width, height, frames, _ = probe(data)
    assert (codec, pix_fmt, width, height) == ("h264", "yuv420p", 128, 72)
    assert abs(frames - 5 * 8) <= 1


async def test_submit_answers_with_the_urls_to_follow(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    body = {"prompt": "", "first_frame_image_url": emu.add_asset("f.png", png(640, 360))}

    status, answer = await call(http, "POST", emu.base_url + MODEL_PATH, json=body)

    rid = answer["request_id"]
    assert status == 200
    assert answer == {
        "request_id": rid,
        "status_url": f"{emu.base_url}/v1/requests/{rid}/status",
        "result_url": f"{emu.base_url}/v1/requests/{rid}/result",
        "cancel_url": f"{emu.base_url}/v1/requests/{rid}/cancel",
    }
    assert emu.submitted == [body]
    assert emu.jobs[rid].payload["resolution"] == "480p"
    assert emu.jobs[rid].payload["duration"] == 5


async def test_cost_is_added_on_request(emu: RunComfyEmulator, http: aiohttp.ClientSession) -> None:
    rid = await submit(http, emu, resolution="720p", duration=10)
    await finished(http, emu, rid)

    _, body = await call(http, "GET", f"{emu.base_url}/v1/requests/{rid}/result?include_cost=true")

    assert body["cost"] == pytest.approx(0.38, abs=0.01)


async def test_queue_position_counts_down_then_the_job_runs(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    emu.plan_next_job(queue_seconds=0.6, run_seconds=0.3)
    rid = await submit(http, emu)
    seen: list[tuple[str, int | None]] = []

    async with asyncio.timeout(20):
        while not seen or seen[-1][0] != "completed":
            _, body = await call(http, "GET", f"{emu.base_url}/v1/requests/{rid}/status")
            seen.append((body["status"], body.get("queue_position")))
            await asyncio.sleep(0.03)

    statuses = [status for status, _ in seen]
    positions = [p for status, p in seen if status == "in_queue" and p is not None]
    assert len(positions) == statuses.count("in_queue")
    assert statuses == sorted(statuses, key=["in_queue", "in_progress", "completed"].index)
    assert {"in_queue", "in_progress", "completed"} == set(statuses)
    assert positions[0] == 3
    assert positions == sorted(positions, reverse=True)
    assert all(position is None for status, position in seen if status != "in_queue")


async def test_cancel_works_only_while_queued(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    emu.plan_next_job(queue_seconds=60)
    emu.plan_next_job(queue_seconds=0, run_seconds=60)
    queued = await submit(http, emu)
    running = await submit(http, emu)
    async with asyncio.timeout(10):
        await emu.wait_until(lambda: emu.jobs[running].status == "in_progress")

    _, first = await call(http, "POST", f"{emu.base_url}/v1/requests/{queued}/cancel")
    _, second = await call(http, "POST", f"{emu.base_url}/v1/requests/{running}/cancel")

    assert first == {"request_id": queued, "status": "cancelled", "outcome": "cancelled"}
    assert second == {"request_id": running, "status": "in_progress", "outcome": "not_cancellable"}
    _, body = await call(http, "GET", f"{emu.base_url}/v1/requests/{queued}/result")
    assert body["status"] == "cancelled"
    assert body["finished_at"] is not None


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"first_frame_image_url": "https://x/f.png"}, {"prompt"}),
        ({"prompt": "hi"}, {"first_frame_image_url"}),
        ({"prompt": "x" * 1901, "first_frame_image_url": "u"}, {"prompt"}),
        ({"prompt": 5, "first_frame_image_url": "u"}, {"prompt"}),
        ({"prompt": "p", "first_frame_image_url": "u", "resolution": "4k"}, {"resolution"}),
        ({"prompt": "p", "first_frame_image_url": "u", "duration": 7}, {"duration"}),
        ({"prompt": "p", "first_frame_image_url": "u", "duration": "5"}, {"duration"}),
        ({"prompt": "p", "first_frame_image_url": "u", "duration": True}, {"duration"}),
        (
            {"prompt": "p", "first_frame_image_url": "u", "last_frame_image_url": 1},
            {"last_frame_image_url"},
        ),
        ({}, {"prompt", "first_frame_image_url"}),
        ([], {"body"}),
    ],
)  # fmt: skip
async def test_invalid_input_is_refused_with_details(
    emu: RunComfyEmulator, http: aiohttp.ClientSession, payload: Any, fields: set[str]
) -> None:
    status, body = await call(http, "POST", emu.base_url + MODEL_PATH, json=payload)

    assert status == 422
    assert body["error_code"] == 422001
    assert {problem["loc"][-1] for problem in body["detail"]} == fields
    assert emu.jobs == {}


async def test_the_longest_prompt_is_accepted(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    rid = await submit(http, emu, prompt="é" * 1900, resolution="1080p", duration=10)

    assert rid in emu.jobs


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}]
)
async def test_api_calls_need_the_token(
    emu: RunComfyEmulator, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    status, body = await call(
        http, "GET", f"{emu.base_url}/v1/requests/abc/status", headers=headers
    )

    assert status == 401
    assert body["error_code"] == 400004
    assert body["error_message"]


async def test_unknown_requests_models_and_routes_answer_json_errors(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    assert await call(http, "GET", f"{emu.base_url}/v1/requests/nope/result") == (
        404,
        {"error_code": 404001, "error_message": "Unknown or expired request id"},
    )
    status, body = await call(http, "POST", f"{emu.base_url}/v1/models/acme/other", json={})
    assert (status, body["error_code"]) == (400, 400001)
    status, body = await call(http, "GET", f"{emu.base_url}/nothing/here")
    assert (status, body["error_code"]) == (404, 404001)


async def test_model_endpoint_reports_pricing(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    status, body = await call(http, "GET", emu.base_url + MODEL_PATH)

    assert status == 200
    assert body["model_id"] == "bytedance/seedance-1-0/lite/image-to-video"
    assert body["base_price_usd"] == pytest.approx(0.0875 / 5, abs=0.0002)
    assert body["price_unit"] == "second"
    assert body["pricing_note"]


# -- inputs fetched like the real service --------------------------------------------------


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (None, "HTTP 404"),
        (png(300, 400), "must not be less than 300 pixels"),
        (png(1000, 350), "aspect ratio"),
        (b"not an image at all", "not a supported image"),
    ],
)
async def test_a_bad_first_frame_fails_the_job(
    emu: RunComfyEmulator, http: aiohttp.ClientSession, image: bytes | None, message: str
) -> None:
    url = f"{emu.base_url}/assets/missing.png"
    if image is not None:
        url = emu.add_asset("bad.png", image)
    rid = await submit(http, emu, first_frame_image_url=url)

    body = await finished(http, emu, rid)

    assert body["status"] == "failed"
    assert message in body["error"]["message"]
    assert body["error"]["field"] == "first_frame_image_url"
    assert "output" not in body


async def test_a_large_first_frame_is_fetched_whole(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    out = io.BytesIO()
    Image.frombytes("RGB", (1200, 800), os.urandom(1200 * 800 * 3)).save(out, "PNG")
    rid = await submit(http, emu, first_frame_image_url=emu.add_asset("big.png", out.getvalue()))

    body = await finished(http, emu, rid)

    assert body["status"] == "completed"


async def test_a_first_frame_of_30_mb_fails_the_job(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    url = emu.add_asset("huge.png", b"\0" * 30_000_000)
    rid = await submit(http, emu, first_frame_image_url=url)

    body = await finished(http, emu, rid)

    assert body["status"] == "failed"
    assert body["error"]["message"] == "File size must be less than 30 MB."


async def test_an_unreachable_last_frame_fails_the_job(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    rid = await submit(http, emu, last_frame_image_url="http://127.0.0.1:9/l.png")

    body = await finished(http, emu, rid)

    assert body["status"] == "failed"
    assert body["error"]["field"] == "last_frame_image_url"


async def test_the_video_fades_from_the_first_to_the_last_frame(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    last = emu.add_asset("last.png", png(640, 360, "blue"))
    rid = await submit(http, emu, last_frame_image_url=last)
    await finished(http, emu, rid)

    *_, frames = probe(emu.jobs[rid].video or b"")

    red, _, blue = mean_colour(frames[0])
    assert red > 200 and blue < 50
    red, _, blue = mean_colour(frames[-1])
    assert blue > 200 and red < 50


async def test_the_last_frame_has_no_effect_at_1080p(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    last = emu.add_asset("last.png", png(640, 360, "blue"))
    rid = await submit(http, emu, last_frame_image_url=last, resolution="1080p")
    await finished(http, emu, rid)

    *_, frames = probe(emu.jobs[rid].video or b"")

    red, _, blue = mean_colour(frames[-1])
    assert red > 200 and blue < 50
    assert not any(r.path == "/assets/last.png" for r in emu.requests)


# -- scripted jobs and faults ------------------------------------------------------------


async def test_injected_video_bytes_are_served_as_is(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    blob = b"\x00" * 300_000
    emu.plan_next_job(video_bytes=blob)
    rid = await submit(http, emu)
    body = await finished(http, emu, rid)

    async with http.get(body["output"]["video"]) as resp:
        assert resp.content_length == len(blob)
        assert await resp.read() == blob


@pytest.mark.parametrize(
    ("outcome", "check"),
    [
        ("failed", lambda b: b["status"] == "failed" and b["error"] == {"why": "gpu on fire"}),
        ("unknown_state", lambda b: b["status"] == "exploded"),
        ("missing_video", lambda b: b["status"] == "completed" and b["output"] == {}),
        ("videos_list", lambda b: b["output"]["videos"][0].endswith(".mp4")),
    ],
)
async def test_scripted_job_outcomes(
    emu: RunComfyEmulator, http: aiohttp.ClientSession, outcome: Any, check: Any
) -> None:
    emu.plan_next_job(outcome, error={"why": "gpu on fire"})
    rid = await submit(http, emu)

    assert check(await finished(http, emu, rid))


async def test_a_video_link_that_is_gone(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    emu.plan_next_job("video_404")
    rid = await submit(http, emu)
    body = await finished(http, emu, rid)

    async with http.get(body["output"]["video"]) as resp:
        assert resp.status == 404


async def test_http_faults_send_error_bodies_and_headers_then_clear(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    emu.faults.add(route="status", kind="http", status=429, headers={"Retry-After": "2"}, times=2)
    url = f"{emu.base_url}/v1/requests/x/status"

    for _ in range(2):
        async with http.get(url, headers=AUTH) as resp:
            assert resp.status == 429
            assert resp.headers["Retry-After"] == "2"
            assert await resp.json() == {"message": "Too many requests"}
    status, _ = await call(http, "GET", url)

    assert status == 404
    assert len(emu.faults) == 0


async def test_error_code_fault_answers_200(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    emu.faults.add(route="result", kind="error_code", error_code=400002, message="no money")

    status, body = await call(http, "GET", f"{emu.base_url}/v1/requests/x/result")

    assert (status, body) == (200, {"error_code": 400002, "error_message": "no money"})


async def test_drop_and_hang_faults(emu: RunComfyEmulator, http: aiohttp.ClientSession) -> None:
    emu.faults.add(route="cancel", kind="drop")
    emu.faults.add(route="video", kind="hang", seconds=30)

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await call(http, "POST", f"{emu.base_url}/v1/requests/x/cancel")
    with pytest.raises(asyncio.TimeoutError):
        await http.get(f"{emu.cdn_url}/files/x.mp4", timeout=aiohttp.ClientTimeout(total=0.2))
    assert emu.calls == [
        ("POST", "/v1/requests/x/cancel"),
        ("GET", "/files/x.mp4"),
    ]


def test_faults_are_checked() -> None:
    emulator = RunComfyEmulator(token="t")

    with pytest.raises(ValueError):
        emulator.faults.add(route="nowhere", kind="drop")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        emulator.faults.add(route="status", kind="explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        emulator.faults.add(route="status", kind="error_code")
    with pytest.raises(ValueError):
        emulator.plan_next_job("meh")  # type: ignore[arg-type]


async def test_the_app_can_be_embedded_in_another_server(http: aiohttp.ClientSession) -> None:
    emulator = RunComfyEmulator(token=TOKEN, queue_seconds=0, run_seconds=0, video_size=(64, 64))
    runners = [web.AppRunner(app, shutdown_timeout=0.5) for app in (emulator.app, emulator.cdn_app)]
    try:
        for runner in runners:
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
        api, cdn = (f"http://127.0.0.1:{runner.addresses[0][1]}" for runner in runners)
        emulator.base_url, emulator.cdn_url = api, cdn
        rid = await submit(http, emulator)
        body = await finished(http, emulator, rid)
        assert body["status"] == "completed"
        async with http.get(body["output"]["video"]) as resp:
            assert resp.status == 200
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


# -- the renderer --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "resolution", "expected"),
    [
        ((1600, 900), "480p", (864, 480)),
        ((900, 1600), "480p", (480, 864)),
        ((1000, 1000), "720p", (960, 960)),
        ((1600, 900), "720p", (1248, 704)),
        ((1200, 900), "1080p", (1664, 1248)),
    ],
)
def test_render_picks_the_seedance_size_for_the_aspect(
    source: tuple[int, int], resolution: str, expected: tuple[int, int]
) -> None:
    from sandbox.video import output_size

    assert output_size(resolution, *source) == expected


async def test_render_at_realistic_settings() -> None:
    data = await asyncio.to_thread(render_clip, png(1600, 900), None, resolution="480p", duration=5)

    codec, pix_fmt, width, height, frames, _ = probe(data)
    assert (codec, pix_fmt, width, height) == ("h264", "yuv420p", 864, 480)
    assert abs(frames - 5 * 24) <= 1
    assert data[4:8] == b"ftyp"
    assert data.index(b"moov") < data.index(b"mdat")


async def test_render_rounds_odd_sizes_to_even() -> None:
    data = await asyncio.to_thread(
        render_clip, png(640, 360), png(640, 360, "green"), resolution="720p", duration=10,
        fps=4, size=(129, 73),
    )  # fmt: skip

    codec, _, width, height, frames, _ = probe(data)
    assert (codec, width, height) == ("h264", 128, 72)
    assert abs(frames - 10 * 4) <= 1


def test_render_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        render_clip(png(640, 360), None, resolution="8k", duration=5)
    with pytest.raises(ValueError):
        render_clip(png(640, 360), None, resolution="480p", duration=0)
