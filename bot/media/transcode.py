"""Make a finished video fit an upload limit by re-encoding it to H.264 at a bitrate from the limit.

Blocking (PyAV); from async code call ``fit_video_async``, which runs in a worker thread.
Frames stream from decoder to encoder one at a time, so memory does not grow with the video.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.video.frame import PictureType, VideoFrame
from av.video.stream import VideoStream

log = logging.getLogger(__name__)

PRESET = "veryfast"
# A source soundtrack is kept as AAC at this rate (Seedance clips have none).
AUDIO_BIT_RATE = 64_000
# The soundtrack is dropped when it would take more than this share of the budget.
AUDIO_MAX_SHARE = 0.25
# Share of the limit spent on media; the rest covers mp4 boxes and rate-control slack.
HEADROOM = 0.93
# Below this many bits per pixel per frame, a smaller picture looks better than a blockier one.
MIN_BITS_PER_PIXEL = 0.05
# Downscaling stops at this many pixels on the short side (or the source's, if smaller).
MIN_SHORT_SIDE = 144
# libx264 counts in kb/s and refuses to open below 1 kb/s; this leaves a little margin.
MIN_VIDEO_BIT_RATE = 2000
# A retry aims this far below what the overshoot ratio alone would suggest.
RETRY_MARGIN = 0.9
# mp4 boxes: the header, x264's settings string, and the index entries of each sample.
_FIXED_OVERHEAD = 2048
_VIDEO_SAMPLE_OVERHEAD = 16
_AUDIO_SAMPLE_OVERHEAD = 8
_AAC_FRAME_SAMPLES = 1024


class TranscodeError(Exception):
    """The video could not be made to fit; ``str()`` is safe to show a member."""


@dataclass(frozen=True)
class VideoInfo:
    """What a member or the upload ladder needs to know about an mp4."""

    width: int
    height: int
    duration_seconds: float
    fps: float
    codec: str
    bit_rate: int  # whole file, bits per second
    size: int  # bytes
    has_audio: bool = False


@dataclass(frozen=True)
class _Source:
    info: VideoInfo
    rate: Fraction
    frames: int
    audio_rate: int  # samples per second; 0 without a soundtrack


@dataclass(frozen=True)
class _Plan:
    width: int
    height: int
    video_bit_rate: int
    keep_audio: bool


# The file came from the provider: read it as the MP4 it must be (never let FFmpeg pick a
# demuxer from the content, such as a playlist that fetches URLs) and open nothing but it.
_INPUT_OPTIONS = {"protocol_whitelist": "file"}


def probe(path: Path) -> VideoInfo:
    """Size, length, frame rate and codec of the first video stream in ``path``."""
    return _inspect(path).info


def fit_video(src: Path, dest: Path, *, limit_bytes: int, max_attempts: int = 3) -> int:
    """Write ``src`` to ``dest`` no larger than ``limit_bytes`` and return the size of ``dest``.

    A source that already fits is copied unchanged. Otherwise it is re-encoded to H.264
    (yuv420p, same duration and frame rate, ``+faststart``) at a bitrate computed from the
    limit; an attempt that overshoots is redone lower, and smaller once the bits per pixel
    get too few. A soundtrack is kept as AAC at AUDIO_BIT_RATE, or dropped when it would take
    more than AUDIO_MAX_SHARE of the budget. ``dest`` appears only when complete; nothing
    partial is ever left behind, and an existing ``dest`` is untouched on failure.
    Raises TranscodeError when ``max_attempts`` encodes cannot fit the limit.
    """
    if limit_bytes <= 0:
        raise ValueError("limit_bytes must be positive")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    size = src.stat().st_size
    if size <= limit_bytes:
        if not dest.exists() or not src.samefile(dest):
            _publish(dest, lambda part: shutil.copyfile(src, part))
        return size
    source = _inspect(src)
    too_big = TranscodeError(f"cannot fit the video under {_mebibytes(limit_bytes)}")
    keep_audio = source.info.has_audio and _audio_fits(source, limit_bytes)
    video_bit_rate = _video_bit_rate(source, limit_bytes, keep_audio=keep_audio)
    if video_bit_rate < MIN_VIDEO_BIT_RATE:
        log.info("%s cannot fit %d bytes: too few bits left for any picture", src, limit_bytes)
        raise too_big

    def attempts(part: Path) -> None:
        nonlocal video_bit_rate
        for attempt in range(1, max_attempts + 1):
            plan = _plan(source, video_bit_rate, keep_audio=keep_audio)
            _encode(src, part, source, plan)
            written = part.stat().st_size
            log.info(
                "Re-encoded %s (attempt %d/%d) at %dx%d, %d b/s video: %d bytes for a limit of %d",
                src,
                attempt,
                max_attempts,
                plan.width,
                plan.height,
                plan.video_bit_rate,
                written,
                limit_bytes,
            )
            if written <= limit_bytes:
                return
            video_bit_rate = int(video_bit_rate * limit_bytes / written * RETRY_MARGIN)
            if video_bit_rate < MIN_VIDEO_BIT_RATE:
                break
        raise too_big

    _publish(dest, attempts)
    return dest.stat().st_size


# One re-encode at a time per event loop: each takes a core and ~180 MiB at 1080p.
_REENCODE_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


async def fit_video_in_turn(src: Path, dest: Path, *, limit_bytes: int) -> int:
    """:func:`fit_video_async`, waiting for the process's one re-encode slot first."""
    loop = asyncio.get_running_loop()
    slot = _REENCODE_SLOTS.setdefault(loop, asyncio.Semaphore(1))
    async with slot:
        return await fit_video_async(src, dest, limit_bytes=limit_bytes)


async def fit_video_async(src: Path, dest: Path, *, limit_bytes: int, max_attempts: int = 3) -> int:
    """``fit_video`` in a worker thread, so the event loop keeps running while it encodes."""
    return await asyncio.to_thread(
        fit_video, src, dest, limit_bytes=limit_bytes, max_attempts=max_attempts
    )


def _inspect(path: Path) -> _Source:
    try:
        with av.open(str(path), format="mp4", options=_INPUT_OPTIONS) as container:
            return _read_source(path, container)
    except av.FFmpegError as exc:
        log.warning("Could not read %s as a video: %s", path, exc)
        raise TranscodeError("the video file could not be read") from exc


def _read_source(path: Path, container: InputContainer) -> _Source:
    if not container.streams.video:
        raise TranscodeError("the file has no video in it")
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate
    if not rate or rate <= 0:
        raise TranscodeError("the video's frame rate could not be read")
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    else:
        duration = float(stream.frames / rate)
    if duration <= 0:
        raise TranscodeError("the video's length could not be read")
    frames = stream.frames or math.ceil(duration * rate)
    audio = container.streams.audio[0] if container.streams.audio else None
    size = path.stat().st_size
    info = VideoInfo(
        width=stream.codec_context.width,
        height=stream.codec_context.height,
        duration_seconds=duration,
        fps=float(rate),
        codec=stream.codec_context.name,
        bit_rate=container.bit_rate or round(size * 8 / duration),
        size=size,
        has_audio=audio is not None,
    )
    return _Source(info=info, rate=rate, frames=frames, audio_rate=audio.rate if audio else 0)


def _overhead_bytes(source: _Source, *, keep_audio: bool) -> int:
    overhead = _FIXED_OVERHEAD + _VIDEO_SAMPLE_OVERHEAD * source.frames
    if keep_audio:
        audio_frames = math.ceil(
            source.info.duration_seconds * source.audio_rate / _AAC_FRAME_SAMPLES
        )
        overhead += _AUDIO_SAMPLE_OVERHEAD * audio_frames
    return overhead


def _media_bits(source: _Source, limit_bytes: int, *, keep_audio: bool) -> int:
    """Bits the encoded streams may take, after headroom and the container's own bytes."""
    return int((limit_bytes * HEADROOM - _overhead_bytes(source, keep_audio=keep_audio)) * 8)


def _audio_fits(source: _Source, limit_bytes: int) -> bool:
    audio_bits = AUDIO_BIT_RATE * source.info.duration_seconds
    fits = audio_bits <= AUDIO_MAX_SHARE * _media_bits(source, limit_bytes, keep_audio=True)
    if not fits:
        log.info("Dropping the soundtrack: it would take too much of a %d-byte limit", limit_bytes)
    return fits


def _video_bit_rate(source: _Source, limit_bytes: int, *, keep_audio: bool) -> int:
    bits = _media_bits(source, limit_bytes, keep_audio=keep_audio)
    if keep_audio:
        bits -= int(AUDIO_BIT_RATE * source.info.duration_seconds)
    return int(bits / source.info.duration_seconds)


def _plan(source: _Source, video_bit_rate: int, *, keep_audio: bool) -> _Plan:
    """The picture size for ``video_bit_rate``: the source's, or smaller when bits run thin."""
    width, height = source.info.width, source.info.height
    per_pixel = video_bit_rate / (width * height * source.info.fps)
    scale = min(1.0, math.sqrt(per_pixel / MIN_BITS_PER_PIXEL))
    short_side = min(width, height)
    scale = max(scale, min(1.0, MIN_SHORT_SIDE / short_side))
    return _Plan(
        width=_even(width * scale),
        height=_even(height * scale),
        video_bit_rate=video_bit_rate,
        keep_audio=keep_audio,
    )


def _encode(src: Path, part: Path, source: _Source, plan: _Plan) -> None:
    try:
        with (
            av.open(str(src), format="mp4", options=_INPUT_OPTIONS) as inp,
            av.open(str(part), mode="w", format="mp4", options={"movflags": "+faststart"}) as out,
        ):
            _transcode(inp, out, source, plan)
    except av.FFmpegError as exc:
        log.warning("Re-encoding %s failed: %s", src, exc)
        raise TranscodeError("the video could not be re-encoded") from exc


def _transcode(
    inp: InputContainer, out: av.container.OutputContainer, source: _Source, plan: _Plan
) -> None:
    vin = inp.streams.video[0]
    vin.thread_type = "AUTO"
    vout = out.add_stream("libx264", rate=source.rate)
    vout.width = plan.width
    vout.height = plan.height
    vout.pix_fmt = "yuv420p"
    if vin.time_base is not None:
        vout.time_base = vin.time_base
    vout.codec_context.bit_rate = plan.video_bit_rate
    vout.codec_context.bit_rate_tolerance = plan.video_bit_rate
    # A ceiling at the target with about a second of buffer keeps ABR from overshooting.
    vout.options = {
        "preset": PRESET,
        "maxrate": str(plan.video_bit_rate),
        "bufsize": str(plan.video_bit_rate),
    }
    ain: AudioStream | None = None
    aout: AudioStream | None = None
    if plan.keep_audio:
        ain = inp.streams.audio[0]
        aout = out.add_stream("aac", rate=ain.rate)
        aout.layout = ain.layout
        aout.bit_rate = AUDIO_BIT_RATE

    streams: list[VideoStream | AudioStream] = [vin] if ain is None else [vin, ain]
    for packet in inp.demux(*streams):
        if packet.stream is vin:
            for frame in vin.decode(packet):
                out.mux(vout.encode(_prepare(frame, plan)))
        elif ain is not None and aout is not None:
            for sound in ain.decode(packet):
                out.mux(aout.encode(sound))
    out.mux(vout.encode(None))
    if aout is not None:
        out.mux(aout.encode(None))


def _prepare(frame: VideoFrame, plan: _Plan) -> VideoFrame:
    if frame.width != plan.width or frame.height != plan.height or frame.format.name != "yuv420p":
        scaled = frame.reformat(
            width=plan.width, height=plan.height, format="yuv420p", interpolation="AREA"
        )
        scaled.pts = frame.pts
        scaled.time_base = frame.time_base
        frame = scaled
    # libx264 copies a frame's picture type from the source; let it choose its own.
    frame.pict_type = PictureType.NONE
    return frame


def _publish(dest: Path, write: Callable[[Path], object]) -> None:
    """Run ``write`` on a temporary file next to ``dest``; rename it into place on success."""
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    part = Path(name)
    try:
        write(part)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def _mebibytes(size: int) -> str:
    return f"{size / 2**20:.3g} MiB"
