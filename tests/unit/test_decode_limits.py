"""Image decoding is bounded: a few at a time without holding worker threads, and in time."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from bot import frames
from bot.frames import images
from bot.frames.rules import MAX_CONCURRENT_DECODES
from tests.harness.images import make_image


async def test_waiting_images_hold_no_worker_threads(monkeypatch: pytest.MonkeyPatch) -> None:
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
    data = make_image(640, 480)
    results = await asyncio.gather(
        *(frames.check_image("Image", data) for _ in range(4 * MAX_CONCURRENT_DECODES))
    )
    assert all(facts is not None and not found for facts, found in results)
    # Threads beyond the slots would be parked in the executor, unable to serve anyone else.
    assert most <= MAX_CONCURRENT_DECODES


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
