"""Image decoding is bounded: a few at a time without holding worker threads, and in time."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from bot import frames
from bot.frames import images
from bot.frames.rules import DECODE_PIXEL_BUDGET, MAX_CONCURRENT_DECODES, MAX_DECODE_PIXELS
from tests.harness.images import make_image


async def most_at_once(monkeypatch: pytest.MonkeyPatch, data: bytes, count: int) -> int:
    """Decode ``data`` ``count`` times at once; the most decodes that ran together."""
    real = images.inspect_image
    inside = 0
    most = 0
    lock = threading.Lock()

    def counted(label: str, data: bytes) -> frames.ImageFacts:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        try:
            time.sleep(0.05)
            return real(label, data)
        finally:
            with lock:
                inside -= 1

    monkeypatch.setattr(images, "inspect_image", counted)
    results = await asyncio.gather(*(frames.check_image("Image", data) for _ in range(count)))
    assert all(facts is not None and not found for facts, found in results)
    return most


async def test_waiting_images_hold_no_worker_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    most = await most_at_once(monkeypatch, make_image(640, 480), 4 * MAX_CONCURRENT_DECODES)
    # Threads beyond the slots would be parked in the executor, unable to serve anyone else;
    # ordinary images use every slot.
    assert most == MAX_CONCURRENT_DECODES


async def test_images_of_unknown_size_decode_two_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two of the largest images at once hold all the pixels the budget allows (~200 MB): a
    WebP's size is not read before Pillow, so it weighs the most an image may have."""
    largest = make_image(1200, 900, fmt="WEBP")
    assert images.decode_weight(largest) == MAX_DECODE_PIXELS
    assert await most_at_once(monkeypatch, largest, 6) == DECODE_PIXEL_BUDGET // MAX_DECODE_PIXELS


def test_a_png_weighs_what_its_header_says_and_a_jpeg_its_eighth_scale() -> None:
    assert images.decode_weight(make_image(640, 360)) == 640 * 360
    assert images.decode_weight(make_image(640, 360, fmt="JPEG")) == MAX_DECODE_PIXELS // 64
    # A header claiming more than may ever be decoded weighs the most; so does the unknown.
    huge = bytearray(make_image(64, 64))
    huge[16:24] = (100_000).to_bytes(4, "big") * 2
    assert images.decode_weight(bytes(huge)) == MAX_DECODE_PIXELS
    assert images.decode_weight(b"GIF89a....") == MAX_DECODE_PIXELS


async def test_an_image_too_slow_to_read_is_refused_in_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()

    def stuck(label: str, data: bytes) -> frames.ImageFacts:
        release.wait(5)
        raise AssertionError("never answered")

    monkeypatch.setattr(images, "inspect_image", stuck)
    monkeypatch.setattr(images, "DECODE_SECONDS", 0.2, raising=False)
    started = time.monotonic()
    try:
        facts, found = await frames.check_image("Image", b"\x89PNG whatever")
    finally:
        release.set()
    assert time.monotonic() - started < 2.0
    assert facts is None
    assert [v.rule for v in found] == ["decode_time"]
    assert "took too long" in found[0].message
