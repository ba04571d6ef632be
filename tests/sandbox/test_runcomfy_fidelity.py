"""The emulator as RunComfy's own published clients see the real service.

Requests here are shaped as RunComfy's ComfyUI partner nodes send them (runcomfy/client.py):
their headers, ``include_cost=true`` on every result poll, no redirects followed, images as
``data:`` URIs, and a price read from the model endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import av
import pytest
from PIL import Image
from yarl import URL

from bot.runcomfy.client import MODEL_PATH
from sandbox.runcomfy import RunComfyEmulator
from tests.harness.e2e import E2E
from tests.harness.images import make_image

TOKEN = "fidelity-token"
# What the nodes send on every API call (runcomfy/client.py, RunComfyClient._request).
NODE_HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "Accept": "application/json",
    "Cache-Control": "no-cache",
    "Pragma": "no-cache",
    "User-Agent": "RunComfy-ComfyUI/0.2.0",
}


@pytest.fixture
async def emu() -> AsyncIterator[RunComfyEmulator]:
    async with RunComfyEmulator(
        token=TOKEN, queue_seconds=0, run_seconds=0, video_size=(64, 48), fps=4
    ) as emulator:
        yield emulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def data_uri(data: bytes, media_type: str = "image/png") -> str:
    """An image inlined the way the nodes do it (runcomfy/media.py, image_data_uri)."""
    return f"data:{media_type};base64," + base64.b64encode(data).decode("ascii")


async def node_call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    json_body: Any = None,
    params: dict[str, str] | None = None,
    timeout: float = 20.0,  # noqa: ASYNC109 - a per-request client timeout, as the nodes set
) -> tuple[int, Any]:
    async with http.request(
        method,
        url,
        json=json_body,
        params=params,
        headers=NODE_HEADERS,
        allow_redirects=False,
        timeout=aiohttp.ClientTimeout(total=timeout),
    ) as resp:
        assert resp.content_type == "application/json"
        return resp.status, await resp.json()


async def node_submit(http: aiohttp.ClientSession, emu: RunComfyEmulator, **inputs: Any) -> str:
    body = {"prompt": "waves", "first_frame_image_url": data_uri(make_image(640, 360)), **inputs}
    status, answer = await node_call(http, "POST", emu.base_url + MODEL_PATH, json_body=body)
    assert status == 200, answer
    return str(answer["request_id"])


async def node_result(http: aiohttp.ClientSession, emu: RunComfyEmulator, rid: str) -> Any:
    """Poll /result with include_cost=true until the job leaves the queue and the GPU."""
    async with asyncio.timeout(20):
        while True:
            status, body = await node_call(
                http,
                "GET",
                f"{emu.base_url}/v1/requests/{rid}/result",
                params={"include_cost": "true"},
            )
            assert status == 200, body
            if body["status"] not in ("in_queue", "in_progress"):
                return body
            await asyncio.sleep(0.02)


# -- 1. the paid submit is slow ------------------------------------------------------------


async def test_a_slow_submit_answers_late_and_still_creates_the_job_a_client_gave_up_on(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    assert emu.submit_latency == 0
    emu.submit_latency = 0.6
    loop = asyncio.get_running_loop()

    started = loop.time()
    rid = await node_submit(http, emu)
    waited = loop.time() - started

    assert waited >= 0.6
    assert rid in emu.jobs
    body = {"prompt": "again", "first_frame_image_url": data_uri(make_image(640, 360))}
    with pytest.raises(TimeoutError):
        await node_call(http, "POST", emu.base_url + MODEL_PATH, json_body=body, timeout=0.1)
    async with asyncio.timeout(5):
        await emu.wait_until(lambda: len(emu.jobs) == 2)


async def test_submit_latency_is_a_constructor_setting() -> None:
    async with RunComfyEmulator(token=TOKEN, submit_latency=0.3) as emulator:
        assert emulator.submit_latency == 0.3


# -- 2. the price as the nodes read it ---------------------------------------------------


async def test_the_model_price_is_per_second_and_matches_the_charged_cost(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    status, model = await node_call(http, "GET", emu.base_url + MODEL_PATH)

    # The nodes' parse_price (runcomfy/pricing.py): same model id, the unit they expect, a
    # finite non-negative number; the estimate is that number times the seconds asked for.
    assert status == 200
    assert model["model_id"] == "bytedance/seedance-1-0/lite/image-to-video"
    assert model["price_unit"] == "second"
    price = model["base_price_usd"]
    assert isinstance(price, float) and price > 0
    assert model["pricing_note"]
    frame = emu.add_asset("f.png", make_image(640, 360))
    rid = await node_submit(http, emu, first_frame_image_url=frame, duration=5)
    result = await node_result(http, emu, rid)
    assert result["cost"] == pytest.approx(price * 5, abs=1e-4)


# -- 3. images inline, as data: URIs -------------------------------------------------------


def solid(width: int, height: int, colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def end_frames(video: bytes) -> tuple[Any, Any]:
    """The mean colour of a clip's first and last frames."""
    with av.open(io.BytesIO(video)) as container:
        stream = container.streams.video[0]
        frames = [f.to_image() for f in container.decode(stream)]  # type: ignore[no-untyped-call]
    first, last = frames[0], frames[-1]
    box = Image.Resampling.BOX
    return first.resize((1, 1), box).getpixel((0, 0)), last.resize((1, 1), box).getpixel((0, 0))


async def test_frames_sent_as_data_uris_make_the_video(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    rid = await node_submit(
        http,
        emu,
        first_frame_image_url=data_uri(solid(640, 360, "red")),
        last_frame_image_url=data_uri(solid(640, 360, "blue"), "image/PNG"),
    )

    result = await node_result(http, emu, rid)

    assert result["status"] == "completed", result
    first, last = end_frames(emu.jobs[rid].video or b"")
    assert first[0] > 200 and first[2] < 50
    assert last[2] > 200 and last[0] < 50
    # Nothing was fetched: the API was the only thing asked.
    assert all(path.startswith("/v1/") for _, path in emu.calls)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (solid(300, 400, "red"), "must not be less than 300 pixels"),
        (solid(1000, 350, "red"), "aspect ratio"),
        (b"not an image at all", "not a supported image"),
    ],
)
async def test_a_data_uri_failing_the_image_checks_fails_the_job_as_a_fetched_one_does(
    emu: RunComfyEmulator, http: aiohttp.ClientSession, image: bytes, message: str
) -> None:
    rid = await node_submit(http, emu, last_frame_image_url=data_uri(image))

    result = await node_result(http, emu, rid)

    assert result["status"] == "failed"
    assert result["error"]["field"] == "last_frame_image_url"
    assert message in result["error"]["message"]


@pytest.mark.parametrize(
    "uri",
    [
        "data:image/png;base64",
        "data:image/png;base64,not*base64!",
        "data:image/png;base64,aGk",
        "data:image/png;base64,",
        "data:image/png,rawbytes",
        "data:text/plain;base64,aGk=",
        "DATA:;base64,aGk=",
    ],
)
@pytest.mark.parametrize("field", ["first_frame_image_url", "last_frame_image_url"])
async def test_a_malformed_data_uri_is_refused_at_submit(
    emu: RunComfyEmulator, http: aiohttp.ClientSession, uri: str, field: str
) -> None:
    body = {"prompt": "waves", "first_frame_image_url": data_uri(solid(640, 360, "red"))}

    status, answer = await node_call(
        http, "POST", emu.base_url + MODEL_PATH, json_body={**body, field: uri}
    )

    assert status == 422
    assert answer["error_code"] == 422001
    assert answer["error_message"]
    [problem] = answer["detail"]
    assert problem["loc"] == ["body", field]
    assert "data URI" in problem["msg"]
    assert emu.jobs == {}


# -- 4. big bodies -------------------------------------------------------------------------


def body_of_size(size: int) -> bytes:
    """A valid submit body of exactly ``size`` bytes, padded with a field the API ignores."""
    head = json.dumps({"prompt": "waves", "first_frame_image_url": "https://x/f.png"})[:-1]
    start, end = (head + ', "padding": "').encode(), b'"}'
    return start + b"x" * (size - len(start) - len(end)) + end


@pytest.mark.parametrize(
    ("size", "expected"), [(64 * 1024 * 1024, 200), (64 * 1024 * 1024 + 1, 413)]
)
async def test_bodies_up_to_64_mib_are_taken_and_bigger_ones_refused_with_an_error_code(
    emu: RunComfyEmulator, http: aiohttp.ClientSession, size: int, expected: int
) -> None:
    body = body_of_size(size)
    assert len(body) == size
    headers = {**NODE_HEADERS, "Content-Type": "application/json"}

    async with http.post(emu.base_url + MODEL_PATH, data=body, headers=headers) as resp:
        status, answer = resp.status, await resp.json()

    assert status == expected, answer
    if expected == 413:
        assert answer["error_code"] == 413001
        assert answer["error_message"]
        assert emu.jobs == {}
    else:
        assert answer["request_id"] in emu.jobs


# -- 5. outputs come from a CDN ------------------------------------------------------------


async def node_download(http: aiohttp.ClientSession, url: str) -> tuple[int, str, bytes, str]:
    """Fetch an output as the nodes do: no token, no redirects (runcomfy/async_media.py)."""
    async with http.get(url, allow_redirects=False) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read(), str(resp.url)


async def test_outputs_are_served_from_another_origin_than_the_api(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    rid = await node_submit(http, emu)
    result = await node_result(http, emu, rid)

    url = result["output"]["video"]
    status, content_type, data, _ = await node_download(http, url)

    assert URL(url).origin() != URL(emu.base_url).origin()
    assert URL(url).origin() == URL(emu.cdn_url).origin()
    assert status == 200
    assert content_type == "binary/octet-stream"
    assert data[4:8] == b"ftyp"
    assert emu.requests[-1].headers.get("Authorization") is None
    # The API origin has no files.
    api_copy = URL(emu.base_url).with_path(URL(url).path)
    assert (await node_download(http, str(api_copy)))[0] == 404


async def test_the_output_content_type_and_a_redirect_hop_can_be_set(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    emu.output_content_type = "video/mp4"
    emu.output_redirect = True
    rid = await node_submit(http, emu)
    url = (await node_result(http, emu, rid))["output"]["video"]

    async with http.get(url, allow_redirects=False) as first:
        hop = first.status, first.headers["Location"]
    async with http.get(url) as followed:
        final = followed.status, followed.content_type, await followed.read(), followed.url

    assert hop[0] == 302
    assert URL(hop[1]).origin() == URL(emu.cdn_url).origin()
    assert URL(hop[1]).path != URL(url).path
    status, content_type, data, final_url = final
    assert (status, content_type) == (200, "video/mp4")
    assert data == emu.jobs[rid].video
    assert final_url.path == URL(hop[1]).path


async def test_a_gone_output_is_a_plain_404_on_the_cdn(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    emu.plan_next_job("video_404")
    rid = await node_submit(http, emu)
    url = (await node_result(http, emu, rid))["output"]["video"]

    status, *_ = await node_download(http, url)

    assert status == 404


@pytest.mark.settings(output_redirect=True, output_content_type="binary/octet-stream")
async def test_the_bot_delivers_a_video_from_the_cdn_through_a_redirect(e2e: E2E) -> None:
    await e2e.animate("a kite over the dunes")

    video = await e2e.wait_video()

    [attachment] = video["attachments"]
    assert attachment["content_type"] == "video/mp4"
    [job] = e2e.runcomfy.jobs.values()
    fetched = [r.path for r in e2e.runcomfy.requests if r.method == "GET" and ".mp4" in r.path]
    assert fetched == [f"/files/{job.request_id}.mp4", f"/signed/{job.request_id}.mp4"]
    assert all(
        r.headers.get("Authorization") is None for r in e2e.runcomfy.requests if ".mp4" in r.path
    )
    assert URL(e2e.runcomfy.cdn_url).port != URL(e2e.runcomfy.base_url).port


# -- 6. a whole session as the nodes run it -----------------------------------------------


async def test_cancel_while_queued_and_while_running_then_the_charged_cost(
    emu: RunComfyEmulator, http: aiohttp.ClientSession
) -> None:
    _, model = await node_call(http, "GET", emu.base_url + MODEL_PATH)
    emu.plan_next_job(queue_seconds=60)
    emu.plan_next_job(queue_seconds=0, run_seconds=0.5)
    queued = await node_submit(http, emu)
    running = await node_submit(http, emu, duration=10)
    async with asyncio.timeout(10):
        await emu.wait_until(lambda: emu.jobs[running].status == "in_progress")

    cancels = [
        await node_call(http, "POST", f"{emu.base_url}/v1/requests/{rid}/cancel")
        for rid in (queued, running)
    ]

    # runcomfy-api.md ("Calls", Cancel): a queued job is cancelled; one in progress answers
    # 200 with outcome not_cancellable and goes on (the CLI's cancel.rs reads it the same way).
    assert cancels == [
        (200, {"request_id": queued, "status": "cancelled", "outcome": "cancelled"}),
        (200, {"request_id": running, "status": "in_progress", "outcome": "not_cancellable"}),
    ]
    gone = await node_result(http, emu, queued)
    assert gone["status"] == "cancelled"
    assert gone["finished_at"] is not None
    assert "output" not in gone
    # The job that could not be stopped finishes and is charged; include_cost=true adds the
    # cost in USD as a number (runcomfy-api.md, "Calls"; the nodes' cost_from_result).
    done = await node_result(http, emu, running)
    assert done["status"] == "completed"
    assert isinstance(done["cost"], float)
    assert done["cost"] == pytest.approx(model["base_price_usd"] * 10, abs=1e-4)
    status, again = await node_call(http, "POST", f"{emu.base_url}/v1/requests/{running}/cancel")
    assert (status, again["status"], again["outcome"]) == (200, "completed", "not_cancellable")
