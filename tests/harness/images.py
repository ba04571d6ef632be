"""Test images generated in memory: real files of every kind the frame rules meet.

Keep them small in bytes: prefer mode "1" or "L" for big dimensions (solid colours compress
to almost nothing in PNG).
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Sequence

from PIL import Image

EXIF_ORIENTATION = 0x0112

SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="640" height="480">'
    b'<rect width="640" height="480" fill="teal"/></svg>\n'
)


def _color(mode: str, index: int) -> int | tuple[int, ...]:
    """A solid colour for frame `index`, different for consecutive frames."""
    if mode == "1":
        return 255 * (index % 2)
    level = (40 + 97 * index) % 256
    bands = Image.getmodebands(mode)
    if bands == 1:
        return level
    return tuple((level + 60 * band) % 256 for band in range(bands))


def make_image(
    width: int,
    height: int,
    fmt: str = "PNG",
    mode: str = "RGB",
    exif_orientation: int | None = None,
    frames: int = 1,
    noisy: bool = False,
) -> bytes:
    """Encode a solid-colour image; `frames` > 1 makes it animated (or multi-page/MPO).

    `noisy` fills it with noise instead, so the pixel data is big enough to cut in half.
    """
    if noisy:
        pictures = [Image.effect_noise((width, height), 80).convert(mode) for _ in range(frames)]
    else:
        pictures = [Image.new(mode, (width, height), _color(mode, i)) for i in range(frames)]
    options: dict[str, object] = {}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = exif_orientation
        options["exif"] = exif
    if frames > 1:
        options.update(save_all=True, append_images=pictures[1:])
        if fmt.upper() in {"GIF", "PNG", "WEBP"}:
            options.update(duration=100, loop=0)
    out = io.BytesIO()
    pictures[0].save(out, fmt, **options)
    return out.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def make_png_claiming(width: int, height: int) -> bytes:
    """A valid-looking 1-bit PNG whose header claims `width` by `height` with almost no data.

    The compressed pixel data stops after one row, mid-stream, so decoding it fails as
    truncated: a check that answers "damaged" decoded it, one that names the dimensions
    did not.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    stream = zlib.compressobj(9)
    unfinished = stream.compress(row) + stream.flush(zlib.Z_SYNC_FLUSH)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", unfinished)
        + _png_chunk(b"IEND", b"")
    )


def make_ftyp(major: str, compatible: Sequence[str] = (), *, tail: bytes = b"") -> bytes:
    """The start of an ISO-BMFF file (HEIC, AVIF, MP4, MOV): an `ftyp` box, then `tail`."""
    brands = [major.encode("ascii").ljust(4), *(b.encode("ascii").ljust(4) for b in compatible)]
    payload = brands[0] + b"\x00\x00\x00\x00" + b"".join(brands[1:])
    box = struct.pack(">I", 8 + len(payload)) + b"ftyp" + payload
    return box + (tail or struct.pack(">I", 8) + b"free")
