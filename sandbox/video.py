"""Render a stand-in Seedance clip: a slow zoom and pan over the first frame, into a real H.264 mp4.

Blocking (Pillow and PyAV); call it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import io
import math
import tempfile
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, ImageOps

# Seedance 1.0 output sizes by resolution and aspect ratio (width, height).
SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "480p": {
        "21:9": (960, 416),
        "16:9": (864, 480),
        "4:3": (736, 544),
        "1:1": (640, 640),
        "3:4": (544, 736),
        "9:16": (480, 864),
    },
    "720p": {
        "21:9": (1504, 640),
        "16:9": (1248, 704),
        "4:3": (1120, 832),
        "1:1": (960, 960),
        "3:4": (832, 1120),
        "9:16": (704, 1248),
    },
    "1080p": {
        "21:9": (2176, 928),
        "16:9": (1920, 1088),
        "4:3": (1664, 1248),
        "1:1": (1440, 1440),
        "3:4": (1248, 1664),
        "9:16": (1088, 1920),
    },
}
# The camera pushes in from _ZOOM_START to _ZOOM_END times the working image and drifts
# sideways by _PAN of its width each way; the working image is _ZOOM_END times the output,
# so the closest view maps one-to-one onto output pixels.
_ZOOM_START = 1.08
_ZOOM_END = 1.25
_PAN = 0.035


def output_size(resolution: str, width: int, height: int) -> tuple[int, int]:
    """The clip size for ``resolution`` whose aspect ratio is nearest the image's."""
    try:
        table = SIZES[resolution]
    except KeyError:
        raise ValueError(f"unknown resolution {resolution!r}") from None
    aspect = math.log(width / height)
    return min(table.values(), key=lambda size: abs(math.log(size[0] / size[1]) - aspect))


def render_clip(
    first: bytes,
    last: bytes | None,
    *,
    resolution: str,
    duration: int,
    fps: int = 24,
    size: tuple[int, int] | None = None,
) -> bytes:
    """An mp4 (H.264, yuv420p) of ``duration`` seconds zooming over ``first``.

    With ``last`` it cross-fades to that image and ends on it. ``size`` overrides the
    Seedance size for the resolution; odd dimensions are rounded down to even.
    """
    if duration <= 0 or fps <= 0:
        raise ValueError("duration and fps must be positive")
    start = _open(first)
    if size is None:
        width, height = output_size(resolution, *start.size)
    else:
        width, height = size
    width, height = max(2, width - width % 2), max(2, height - height % 2)
    # Work from a copy a little bigger than the output so each frame is a cheap resize.
    work = (math.ceil(width * _ZOOM_END), math.ceil(height * _ZOOM_END))
    start = ImageOps.fit(start, work, Image.Resampling.LANCZOS)
    end = None if last is None else ImageOps.fit(_open(last), work, Image.Resampling.LANCZOS)

    frames = duration * fps
    # faststart (index before the media, so players start at once) needs a real file.
    with tempfile.TemporaryDirectory(prefix="seedance-clip-") as tmp:
        path = Path(tmp) / "clip.mp4"
        _encode(start, end, path, width=width, height=height, fps=fps, frames=frames)
        return path.read_bytes()


def _encode(
    start: Image.Image,
    end: Image.Image | None,
    path: Path,
    *,
    width: int,
    height: int,
    fps: int,
    frames: int,
) -> None:
    with av.open(
        str(path), mode="w", format="mp4", options={"movflags": "+faststart"}
    ) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.options = {"preset": "veryfast", "crf": "23"}
        for index in range(frames):
            progress = index / (frames - 1) if frames > 1 else 1.0
            image = _camera(start, (width, height), progress)
            if end is not None:
                fade = _smoothstep((progress - 0.4) / 0.6)
                if fade > 0:
                    image = Image.blend(image, _camera(end, (width, height), 1 - progress), fade)
            frame = av.VideoFrame.from_image(image)  # type: ignore[no-untyped-call]
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _open(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as raw:
        return ImageOps.exif_transpose(raw).convert("RGB")


def _camera(source: Image.Image, size: tuple[int, int], progress: float) -> Image.Image:
    """The view of ``source`` at ``progress`` (0..1) along the push-in, scaled to ``size``."""
    eased = _smoothstep(progress)
    src_w, src_h = source.size
    zoom = _ZOOM_START + (_ZOOM_END - _ZOOM_START) * eased
    view_w, view_h = src_w / zoom, src_h / zoom
    centre_x = src_w / 2 + (eased - 0.5) * 2 * _PAN * src_w
    centre_y = src_h / 2
    box = (
        centre_x - view_w / 2,
        centre_y - view_h / 2,
        centre_x + view_w / 2,
        centre_y + view_h / 2,
    )
    return source.resize(size, Image.Resampling.BILINEAR, box=box)


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)
