"""Video relay: memory to download and upload a 100 MB video, time to fit a 1080p clip in 10 MiB.

The measured work runs in a fresh process each time, so its peak RSS is its own:

1. download: `bot.download.download_video` streams a 100,000,000-byte file from a local
   aiohttp server (which sends it from disk) into a file;
2. upload: discord.py posts that file as a message attachment to the local Discord emulator
   (its upload limit raised to 200 MiB), as `cogs.reporter` does with `discord.File(path)`;
3. transcode: `bot.transcode.fit_video_async` re-encodes a 10 s 1080p H.264 clip of about
   30 MB (24 fps, textured, moving) to fit 10 MiB; then three such re-encodes at once, as
   three deliveries over a channel's limit would run them.

Peak RSS rise is the process's peak (reset just before the step, Linux) minus its RSS before.
The servers (file host, Discord emulator) run in the parent process and are not counted.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import aiohttp
import av
import discord
from aiohttp import web
from PIL import Image, ImageChops, ImageFilter

from bench.common import MIB, Check, Report, Table, current_rss, peak_rss, reset_peak_rss
from bot.endpoints import configure_discord_endpoints
from bot.media.download import download_video
from bot.media.transcode import fit_video_async, probe
from sandbox.discord import DiscordEmulator

TITLE = "Video relay"
DEFAULT_RUNS = 1

CONCURRENT_TRANSCODES = 3


@dataclass(frozen=True)
class Sizes:
    video_bytes: int
    clip_size: tuple[int, int]
    clip_seconds: int
    limit: int


FULL = Sizes(video_bytes=100_000_000, clip_size=(1920, 1080), clip_seconds=10, limit=10 * MIB)
QUICK = Sizes(video_bytes=10_000_000, clip_size=(640, 360), clip_seconds=2, limit=MIB)


@dataclass(frozen=True)
class Step:
    seconds: float
    rss_before: int
    rss_rise: int
    size: int


@dataclass(frozen=True)
class DiscordTarget:
    api_base: str
    gateway_url: str
    token: str
    channel_id: int


# -- inputs -----------------------------------------------------------------------------------


def write_random(path: Path, size: int) -> None:
    """``size`` random bytes behind an ISO-BMFF ftyp box, as download_video requires of an MP4."""
    head = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    with path.open("wb") as fh:
        fh.write(head)
        left = size - len(head)
        while left:
            block = min(left, 4 * MIB)
            fh.write(os.urandom(block))
            left -= block


def write_clip(path: Path, size: tuple[int, int], seconds: int, fps: int = 24) -> None:
    """A moving, textured H.264 clip at 24 Mb/s: hard enough to need a real re-encode."""
    width, height = size
    noise = Image.merge("RGB", [Image.effect_noise(size, 90) for _ in range(3)])
    ramp = Image.linear_gradient("L").resize(size).convert("RGB")
    base = Image.blend(noise.filter(ImageFilter.GaussianBlur(1.5)), ramp, 0.4)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = 24_000_000
        stream.options = {"preset": "ultrafast"}
        for index in range(seconds * fps):
            picture = ImageChops.offset(base, index * 7, index * 3)
            frame = av.VideoFrame.from_image(picture)  # type: ignore[no-untyped-call]
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


# -- the measured steps, each in a fresh process --------------------------------------------


def _begin() -> tuple[int, bool]:
    before = current_rss()
    return before, reset_peak_rss()


def _end(before: int, exact: bool, started: float, size: int) -> Step:
    peak = peak_rss() if exact else max(peak_rss(), before)
    return Step(time.perf_counter() - started, before, max(0, peak - before), size)


def download_step(url: str, base_url: str, dest: Path, max_bytes: int) -> Step:
    async def run() -> Step:
        async with aiohttp.ClientSession() as http:
            before, exact = _begin()
            started = time.perf_counter()
            size = await download_video(http, url, dest, base_url=base_url, max_bytes=max_bytes)
            return _end(before, exact, started, size)

    return asyncio.run(run())


def upload_step(path: Path, target: DiscordTarget) -> Step:
    async def run() -> Step:
        configure_discord_endpoints(target.api_base, target.gateway_url)
        client = discord.Client(intents=discord.Intents.none())
        await client.login(target.token)
        try:
            channel = client.get_partial_messageable(target.channel_id)
            before, exact = _begin()
            started = time.perf_counter()
            message = await channel.send(
                "your video is ready!", file=discord.File(path, filename="seedance-1.mp4")
            )
            return _end(before, exact, started, message.attachments[0].size)
        finally:
            await client.close()

    return asyncio.run(run())


def transcode_step(src: Path, dest: Path, limit: int, copies: int = 1) -> Step:
    """`copies` re-encodes at once, each in a worker thread as `fit_video_async` runs them."""
    probe(src)  # warm the codec libraries up, outside the measurement

    async def run() -> list[int]:
        return await asyncio.gather(
            *(
                fit_video_async(src, dest.with_name(f"{dest.stem}-{n}.mp4"), limit_bytes=limit)
                for n in range(copies)
            )
        )

    before, exact = _begin()
    started = time.perf_counter()
    sizes = asyncio.run(run())
    return _end(before, exact, started, max(sizes))


# -- the run ----------------------------------------------------------------------------------


async def _in_fresh_process(fn: Callable[..., Step], *args: object) -> Step:
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return await loop.run_in_executor(pool, fn, *args)


async def _measure(sizes: Sizes, folder: Path) -> Report:
    video = folder / "video.mp4"
    await asyncio.to_thread(write_random, video, sizes.video_bytes)
    clip = folder / "clip.mp4"
    await asyncio.to_thread(write_clip, clip, sizes.clip_size, sizes.clip_seconds)
    clip_bytes = clip.stat().st_size

    async def serve(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(video)

    app = web.Application()
    app.router.add_get("/files/video.mp4", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    origin = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with DiscordEmulator(upload_limit=200 * MIB, serve_page=False) as emu:
            target = DiscordTarget(emu.api_base, emu.gateway_url, emu.bot_token, emu.channel_id)
            fetched = folder / "fetched.mp4"
            down = await _in_fresh_process(
                download_step, f"{origin}/files/video.mp4", origin, fetched, 200_000_000
            )
            up = await _in_fresh_process(upload_step, fetched, target)
            posted = [len(a.data) for m in emu.service.messages.values() for a in m.attachments]
    finally:
        await runner.cleanup()
    fitted = await _in_fresh_process(transcode_step, clip, folder / "fitted.mp4", sizes.limit)
    together = await _in_fresh_process(
        transcode_step, clip, folder / "together.mp4", sizes.limit, CONCURRENT_TRANSCODES
    )
    width, height = sizes.clip_size
    table = Table(
        "Download, upload, transcode (each in a fresh process)",
        [
            "step",
            "bytes in",
            "bytes out",
            "time (s)",
            "MB/s",
            "RSS before (MiB)",
            "peak RSS rise (MiB)",
        ],
        [
            [
                "download_video from a local server",
                sizes.video_bytes,
                down.size,
                down.seconds,
                down.size / down.seconds / 1e6,
                down.rss_before / MIB,
                down.rss_rise / MIB,
            ],
            [
                "discord.py upload to the Discord emulator",
                down.size,
                up.size,
                up.seconds,
                up.size / up.seconds / 1e6,
                up.rss_before / MIB,
                up.rss_rise / MIB,
            ],
            [
                f"fit_video: {sizes.clip_seconds} s {width}x{height} into "
                f"{sizes.limit / MIB:g} MiB",
                clip_bytes,
                fitted.size,
                fitted.seconds,
                clip_bytes / fitted.seconds / 1e6,
                fitted.rss_before / MIB,
                fitted.rss_rise / MIB,
            ],
            [
                f"{CONCURRENT_TRANSCODES} of those at once (fit_video_async)",
                clip_bytes * CONCURRENT_TRANSCODES,
                together.size,
                together.seconds,
                clip_bytes * CONCURRENT_TRANSCODES / together.seconds / 1e6,
                together.rss_before / MIB,
                together.rss_rise / MIB,
            ],
        ],
        "The file server and the Discord emulator run in another process. Re-encodes run in "
        "asyncio's default thread pool, with no limit on how many run at once.",
    )
    checks = [
        Check("download: peak RSS rise", down.rss_rise / MIB, "<", 16.0, "MiB"),
        Check("download: bytes written", float(down.size), "==", float(sizes.video_bytes)),
        Check(
            "upload: bytes Discord stored",
            float(max(posted, default=0)),
            "==",
            float(sizes.video_bytes),
        ),
        Check("transcode: output size", fitted.size / MIB, "<=", sizes.limit / MIB, "MiB"),
    ]
    return Report([table], checks)


def measure(quick: bool, seed: int) -> Report:
    with tempfile.TemporaryDirectory(prefix="bench-relay-", dir=Path.home()) as tmp:
        return asyncio.run(_measure(QUICK if quick else FULL, Path(tmp)))
