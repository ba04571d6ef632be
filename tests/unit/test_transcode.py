"""The upload ladder's re-encoder against real mp4 files made with PyAV in tmp_path."""

from __future__ import annotations

import math
import random
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import pytest
from PIL import Image, ImageDraw

from bot.media.transcode import TranscodeError, VideoInfo, fit_video, fit_video_async, probe

# One period of a 375 Hz tone at 48 kHz is 128 samples, so every 1024-sample frame is the same.
_TONE = struct.pack(
    "1024f",
    *(0.3 * math.sin(2 * math.pi * i / 128) for i in range(1024)),
)


def make_clip(
    path: Path,
    *,
    width: int = 640,
    height: int = 360,
    fps: int = 24,
    seconds: int = 3,
    audio: bool = False,
) -> Path:
    """A noisy clip (a sliding gradient, grain and a moving disc) at a high bitrate."""
    rng = random.Random(f"{width}x{height}@{fps}")
    frames = fps * seconds
    ramp = Image.linear_gradient("L").resize((width * 2, height))
    with av.open(str(path), mode="w", format="mp4") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "14"}
        sound = out.add_stream("aac", rate=48000) if audio else None
        for index in range(frames):
            shift = index * width // frames
            base = ramp.crop((shift, 0, shift + width, height))
            grain = Image.frombytes("L", (width, height), rng.randbytes(width * height))
            picture = Image.merge("RGB", (Image.blend(base, grain, 0.35), base, grain))
            ImageDraw.Draw(picture).ellipse(
                (shift, height // 4, shift + height // 4, height // 2), fill=(255, 0, 0)
            )
            frame = av.VideoFrame.from_image(picture)  # type: ignore[no-untyped-call]
            frame.pts = index
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            for start in range(0, 48000 * seconds, 1024):
                chunk = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
                for plane in chunk.planes:
                    plane.update(_TONE)
                chunk.sample_rate = 48000
                chunk.pts = start
                chunk.time_base = Fraction(1, 48000)
                out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))
    return path


@dataclass(frozen=True)
class Played:
    """What a player sees when it plays a file through."""

    frames: int
    codec: str
    pix_fmt: str
    audio_codecs: list[str]
    moov_before_mdat: bool


def play(path: Path) -> Played:
    boxes = top_level_boxes(path)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return Played(
            frames=sum(1 for _ in container.decode(stream)),
            codec=stream.codec_context.name,
            pix_fmt=stream.codec_context.pix_fmt or "",
            audio_codecs=[a.codec_context.name for a in container.streams.audio],
            moov_before_mdat=boxes.index("moov") < boxes.index("mdat"),
        )


def top_level_boxes(path: Path) -> list[str]:
    names = []
    with path.open("rb") as fh:
        while header := fh.read(8):
            size, name = struct.unpack(">I4s", header)
            if size == 1:
                size = struct.unpack(">Q", fh.read(8))[0] - 8
            names.append(name.decode("latin-1"))
            fh.seek(size - 8, 1)
    return names


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    make_clip(folder / "silent.mp4")
    make_clip(folder / "sound.mp4", audio=True)
    make_clip(folder / "fast.mp4", width=320, height=180, fps=60, seconds=4)
    return folder


@pytest.fixture
def silent(clips: Path) -> Path:
    return clips / "silent.mp4"


def assert_same_timing(out: VideoInfo, src: VideoInfo) -> None:
    assert out.fps == src.fps
    assert abs(out.duration_seconds - src.duration_seconds) <= 1 / src.fps


def test_probe_reads_the_clip(clips: Path) -> None:
    info = probe(clips / "silent.mp4")

    size = (clips / "silent.mp4").stat().st_size
    assert (info.width, info.height, info.fps, info.codec) == (640, 360, 24.0, "h264")
    assert info.duration_seconds == pytest.approx(3.0, abs=1 / 24)
    assert info.size == size > 2_000_000
    assert info.bit_rate == pytest.approx(size * 8 / 3.0, rel=0.05)
    assert not info.has_audio
    assert probe(clips / "sound.mp4").has_audio


async def test_a_quarter_of_the_size_plays_the_same(silent: Path, tmp_path: Path) -> None:
    src = probe(silent)
    dest = tmp_path / "video.mp4"
    limit = src.size // 4

    size = await fit_video_async(silent, dest, limit_bytes=limit)

    assert size <= limit
    assert_full_picture_plays(dest, src, size)


def assert_full_picture_plays(dest: Path, src: VideoInfo, size: int) -> None:
    assert dest.stat().st_size == size
    out = probe(dest)
    assert (out.width, out.height, out.codec) == (640, 360, "h264")
    assert_same_timing(out, src)
    played = play(dest)
    assert abs(played.frames - 72) <= 1
    assert played.pix_fmt == "yuv420p"
    assert played.moov_before_mdat  # Discord can start playing before the download ends
    assert [p.name for p in dest.parent.iterdir()] == ["video.mp4"]


def test_a_tight_limit_shrinks_the_picture_and_fits(silent: Path, tmp_path: Path) -> None:
    src = probe(silent)
    dest = tmp_path / "video.mp4"

    size = fit_video(silent, dest, limit_bytes=40_000)

    assert size == dest.stat().st_size <= 40_000
    out = probe(dest)
    assert out.width < 640
    assert out.width % 2 == 0
    assert out.height % 2 == 0
    assert out.width / out.height == pytest.approx(640 / 360, rel=0.02)
    assert_same_timing(out, src)
    assert abs(play(dest).frames - 72) <= 1


def test_an_impossible_limit_is_refused_and_leaves_nothing(silent: Path, tmp_path: Path) -> None:
    with pytest.raises(TranscodeError) as caught:
        fit_video(silent, tmp_path / "video.mp4", limit_bytes=2048)

    assert str(caught.value) == "cannot fit the video under 0.00195 MiB"
    assert list(tmp_path.iterdir()) == []


def test_giving_up_after_trying_keeps_the_old_file(clips: Path, tmp_path: Path) -> None:
    # 240 frames cannot be stored in 8 kB, whatever the picture size: the encode overshoots.
    dest = tmp_path / "video.mp4"
    dest.write_bytes(b"the previous video")

    with pytest.raises(TranscodeError, match="cannot fit the video under"):
        fit_video(clips / "fast.mp4", dest, limit_bytes=8_000)

    assert dest.read_bytes() == b"the previous video"
    assert [p.name for p in tmp_path.iterdir()] == ["video.mp4"]


def test_a_video_that_fits_is_copied_unchanged(silent: Path, tmp_path: Path) -> None:
    dest = tmp_path / "video.mp4"

    size = fit_video(silent, dest, limit_bytes=silent.stat().st_size)

    assert size == silent.stat().st_size
    assert dest.read_bytes() == silent.read_bytes()
    assert fit_video(dest, dest, limit_bytes=size) == size
    assert dest.read_bytes() == silent.read_bytes()


def test_a_soundtrack_is_kept_as_aac(clips: Path, tmp_path: Path) -> None:
    src = probe(clips / "sound.mp4")
    dest = tmp_path / "video.mp4"

    size = fit_video(clips / "sound.mp4", dest, limit_bytes=src.size // 4)

    assert size <= src.size // 4
    assert_same_timing(probe(dest), src)
    played = play(dest)
    assert played.audio_codecs == ["aac"]
    assert abs(played.frames - 72) <= 1


def test_a_soundtrack_is_dropped_when_it_would_crowd_out_the_picture(
    clips: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "video.mp4"

    size = fit_video(clips / "sound.mp4", dest, limit_bytes=60_000)

    assert size <= 60_000
    played = play(dest)
    assert played.audio_codecs == []
    assert abs(played.frames - 72) <= 1


def test_a_file_that_is_not_a_video_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "broken.mp4"
    src.write_bytes(b"this is not an mp4 " * 1000)

    with pytest.raises(TranscodeError) as caught:
        fit_video(src, tmp_path / "video.mp4", limit_bytes=1000)

    assert str(caught.value) == "the video file could not be read"
    assert [p.name for p in tmp_path.iterdir()] == ["broken.mp4"]
    with pytest.raises(TranscodeError):
        probe(src)


@pytest.mark.parametrize(("limit", "attempts"), [(0, 3), (1000, 0)])
def test_nonsense_arguments_are_refused(
    silent: Path, tmp_path: Path, limit: int, attempts: int
) -> None:
    with pytest.raises(ValueError):
        fit_video(silent, tmp_path / "video.mp4", limit_bytes=limit, max_attempts=attempts)


def test_a_file_that_is_no_mp4_is_not_demuxed_as_something_else(tmp_path: Path) -> None:
    # A GIF (or a playlist, or any other container) named .mp4 is refused, not read with
    # whatever demuxer its content suggests.
    fake = tmp_path / "video.mp4"
    frames = [Image.new("RGB", (64, 64), (n * 40, 0, 0)) for n in range(5)]
    frames[0].save(fake, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(TranscodeError, match="could not be read"):
        probe(fake)
    playlist = tmp_path / "list.mp4"
    playlist.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nhttp://10.0.0.7/a.ts\n")
    with pytest.raises(TranscodeError, match="could not be read"):
        probe(playlist)
