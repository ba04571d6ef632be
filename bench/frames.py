"""Frame checks: time and memory to accept or reject an image with `bot.frames`.

Each case runs `frames.check_request` — metadata first, then the download, then the image
checks — in a fresh process, downloading from a local aiohttp server the way the bot reads a
Discord attachment (`Attachment.read()`: the whole body into bytes). Measured per case:

- wall time of the whole check (download included);
- bytes the client read and requests the server answered (a metadata reject must read none);
- tracemalloc's peak (Python-level allocations: the downloaded bytes and the like);
- the rise of the process's peak RSS over its RSS just before the check (Linux resets the
  peak through /proc/self/clear_refs), which also sees Pillow's pixel buffers;
- the size of one full decoded copy as Pillow holds it (RGB takes 4 bytes a pixel), to
  compare the rise with: the rise minus tracemalloc's peak is the pixel memory.

The 30 MB JPEG is noise (the worst case for its size) just under 30,000,000 bytes; the bomb is
a 30,000x30,000 one-bit PNG of about 100 kB (900 million pixels: 900 MB decoded).
"""

from __future__ import annotations

import asyncio
import io
import math
import struct
import tempfile
import time
import tracemalloc
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import aiohttp
from aiohttp import web
from PIL import Image

from bench.common import MIB, Check, Report, Table, current_rss, ms, peak_rss, reset_peak_rss
from bot import frames

TITLE = "Frame checks"
DEFAULT_RUNS = 3

JPEG_TARGET = 29_900_000  # just under the 30,000,000-byte limit
JPEG_QUALITY = 97
# Pillow keeps an RGB image as four bytes a pixel (RGBX).
PILLOW_RGB_BYTES = 4


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    declared_size: int  # what Discord's attachment metadata says
    decoded_bytes: int  # one full decoded copy, as Pillow stores it


@dataclass(frozen=True)
class Result:
    accepted: bool
    reasons: str
    seconds: float
    bytes_read: int
    requests: int
    tracemalloc_peak: int
    rss_rise: int


# -- the images -------------------------------------------------------------------------------


def _noise_jpeg(width: int, height: int, quality: int) -> bytes:
    bands = [Image.effect_noise((width, height), 64) for _ in range(3)]
    out = io.BytesIO()
    Image.merge("RGB", bands).save(out, "JPEG", quality=quality)
    return out.getvalue()


def noise_jpeg(target: int, aspect: float = 1.25) -> tuple[bytes, int, int]:
    """A noise JPEG of at most `target` bytes and at least 98 % of it, with its size."""
    width, height = 1200, 900
    data = _noise_jpeg(width, height, JPEG_QUALITY)
    for _ in range(6):
        scale = math.sqrt(target * 0.995 / len(data))
        height = max(301, int(height * scale))
        width = max(301, int(height * aspect))
        data = _noise_jpeg(width, height, JPEG_QUALITY)
        if target * 0.98 <= len(data) <= target:
            break
    if len(data) > target:
        raise RuntimeError(f"could not make a noise JPEG under {target} bytes")
    return data, width, height


def gradient_png(side: int) -> bytes:
    ramp = Image.linear_gradient("L").resize((side, side))
    picture = Image.merge(
        "RGB", [ramp, ramp.rotate(90), ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    )
    out = io.BytesIO()
    picture.save(out, "PNG", compress_level=6)
    return out.getvalue()


def bomb_png(side: int) -> bytes:
    """A one-bit PNG of side x side black pixels, written row by row without decoding it."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    row = b"\x00" * (1 + (side + 7) // 8)
    squeeze = zlib.compressobj(9)
    parts = []
    rows_per_block = 1024
    for start in range(0, side, rows_per_block):
        parts.append(squeeze.compress(row * min(rows_per_block, side - start)))
    parts.append(squeeze.flush())
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", b"".join(parts))
        + chunk(b"IEND", b"")
    )


def make_cases(folder: Path, quick: bool) -> list[Case]:
    jpeg_target = 3_000_000 if quick else JPEG_TARGET
    png_side = 2000 if quick else 5999
    jpeg, width, height = noise_jpeg(jpeg_target)
    png = gradient_png(png_side)
    bomb = bomb_png(30_000)
    files = {"photo.jpg": jpeg, "big.png": png, "bomb.png": bomb}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return [
        Case(
            f"{len(jpeg) / 1e6:.2f} MB noise JPEG, {width}x{height}",
            folder / "photo.jpg",
            len(jpeg),
            width * height * PILLOW_RGB_BYTES,
        ),
        Case(
            f"{png_side}x{png_side} RGB PNG ({len(png) / 1e6:.2f} MB)",
            folder / "big.png",
            len(png),
            png_side * png_side * PILLOW_RGB_BYTES,
        ),
        Case(
            f"decompression bomb: 30,000x30,000 PNG ({len(bomb) / 1e3:.0f} kB)",
            folder / "bomb.png",
            len(bomb),
            30_000 * 30_000,  # mode 1: a byte per pixel in Pillow
        ),
        Case(
            "attachment declared 31,000,000 bytes (metadata only)",
            folder / "photo.jpg",
            31_000_000,
            width * height * PILLOW_RGB_BYTES,
        ),
    ]


# -- one case, in a fresh process -----------------------------------------------------------


def run_case(case: Case) -> Result:
    return asyncio.run(_run_case(case))


async def _run_case(case: Case) -> Result:
    served = {"requests": 0}

    async def serve(request: web.Request) -> web.StreamResponse:
        served["requests"] += 1
        return web.FileResponse(case.path)

    app = web.Application()
    app.router.add_get("/attachment", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    read = {"bytes": 0}
    try:
        async with aiohttp.ClientSession() as http:

            async def download() -> bytes:
                # What discord.py's Attachment.read() does: the whole body, in memory.
                async with http.get(f"http://127.0.0.1:{port}/attachment") as resp:
                    resp.raise_for_status()
                    data = await resp.read()
                read["bytes"] += len(data)
                return data

            meta = frames.AttachmentMeta(
                label=frames.IMAGE_LABEL,
                filename=case.path.name,
                size=case.declared_size,
                content_type="image/png",
            )
            # Warm up imports and the connection pool so they do not count.
            await frames.check_request("warm up", [])
            before = current_rss()
            exact = reset_peak_rss()
            tracemalloc.start()
            started = time.perf_counter()
            outcome = await frames.check_request("a lighthouse in a storm", [(meta, download)])
            seconds = time.perf_counter() - started
            _now, traced_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            peak = peak_rss() if exact else max(peak_rss(), before)
    finally:
        await runner.cleanup()
    return Result(
        accepted=outcome.ok,
        reasons=", ".join(v.rule for v in outcome.violations) or "-",
        seconds=seconds,
        bytes_read=read["bytes"],
        requests=served["requests"],
        tracemalloc_peak=traced_peak,
        rss_rise=max(0, peak - before),
    )


def native(result: Result) -> int:
    """Peak memory outside Python's allocator during the check (Pillow's pixels)."""
    return max(0, result.rss_rise - result.tracemalloc_peak)


def measure(quick: bool, seed: int) -> Report:
    with tempfile.TemporaryDirectory(prefix="bench-frames-") as tmp:
        cases = make_cases(Path(tmp), quick)
        results = []
        for case in cases:
            with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                results.append(pool.submit(run_case, case).result())
    rows: list[list[str | int | float | None]] = []
    for case, result in zip(cases, results, strict=True):
        rows.append(
            [
                case.name,
                "accepted" if result.accepted else f"rejected ({result.reasons})",
                ms(result.seconds),
                result.requests,
                result.bytes_read / MIB,
                result.tracemalloc_peak / MIB,
                result.rss_rise / MIB,
                case.decoded_bytes / MIB,
                native(result) / case.decoded_bytes,
            ]
        )
    table = Table(
        "frames.check_request: metadata, download from a local server, image checks",
        [
            "image",
            "outcome",
            "time (ms)",
            "downloads",
            "read (MiB)",
            "tracemalloc peak (MiB)",
            "peak RSS rise (MiB)",
            "one decoded copy (MiB)",
            "pixel memory / one decoded copy",
        ],
        rows,
        "RSS rise - tracemalloc peak estimates memory outside Python's allocator, i.e. "
        "Pillow's pixel buffers; tracemalloc's peak is mostly the downloaded bytes (read "
        "in chunks and then joined: two copies for a moment). "
        "A JPEG is decoded at 1/8 scale (it still reads every byte of the stream), so its "
        "pixels take 1/64 of a full decode; a PNG is decoded once at full size; a bomb and a "
        "metadata reject are never decoded.",
    )
    jpeg, png, bomb, meta = results
    checks = [
        Check("bytes downloaded for a metadata reject", float(meta.bytes_read), "==", 0.0),
        Check("download requests for a metadata reject", float(meta.requests), "==", 0.0),
        Check(
            "PNG: pixel memory / one full decoded copy",
            native(png) / cases[1].decoded_bytes,
            "<=",
            1.1,
        ),
        Check(
            "JPEG: pixel memory / one full decoded copy",
            native(jpeg) / cases[0].decoded_bytes,
            "<=",
            1.1,
        ),
        Check("bomb: peak RSS rise", bomb.rss_rise / MIB, "<", 50.0, "MiB"),
        Check("30 MB JPEG accepted", float(jpeg.accepted), "==", 1.0),
        Check("5999x5999 PNG accepted", float(png.accepted), "==", 1.0),
    ]
    return Report([table], checks)
