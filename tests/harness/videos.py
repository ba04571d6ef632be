"""Real H.264 test videos made with PyAV: noisy, so they do not compress away."""

from __future__ import annotations

import io
import random
from fractions import Fraction

import av
from PIL import Image


def make_video(width: int = 320, height: int = 240, seconds: float = 2.0, fps: int = 12) -> bytes:
    buffer = io.BytesIO()
    rng = random.Random(7)
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = 4_000_000
        stream.time_base = Fraction(1, fps)
        for index in range(round(seconds * fps)):
            pixels = rng.randbytes(width * height * 3)
            frame = av.VideoFrame.from_image(Image.frombytes("RGB", (width, height), pixels))
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def duration_seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames / float(stream.average_rate or 1)
