"""What an image's bytes really are: a signature sniff, then Pillow, safely.

A cheap signature sniff gives specific reasons for formats Pillow must not handle (SVG,
HEIC/HEIF, AVIF, JPEG XL, video), then Pillow reads the header, and the pixels are decoded
(in a worker thread, a few at a time) only when the header dimensions already pass the
table, which keeps decompression bombs from ever being decoded.

The "few at a time" is an asyncio budget per event loop, taken before a worker thread is
used, so waiting images never hold executor threads: a few decodes at once, and no more
pixels at once than two of the largest images hold (a PNG weighs what its header says, a
JPEG the 1/64 it is decoded at, anything else the most an image may have). A member waits at
most `DECODE_SECONDS` for an answer.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import weakref
from collections import deque
from typing import Final

from PIL import Image, ImageFile, TiffImagePlugin, UnidentifiedImageError

from bot.frames.rules import (
    ALLOWED_FORMATS,
    ALLOWED_LIST,
    DECODE_PIXEL_BUDGET,
    EXIF_ORIENTATION,
    JPEG_FAMILY,
    MAX_CONCURRENT_DECODES,
    MAX_DECODE_PIXELS,
    PILLOW_FORMATS,
    RULES,
    SWAPPING_ORIENTATIONS,
    ImageFacts,
    ImageRejected,
    Violation,
    dimensions_pass,
    format_number,
)
from bot.i18n import N_, Text, _

log = logging.getLogger(__name__)

DECODE_SECONDS: float = 10.0
"""How long one image may take to read before the member is told it took too long."""


class DecodeBudget:
    """Decodes at once, by count and by pixels; first come, first served."""

    def __init__(self, slots: int, pixels: int) -> None:
        self._slots = slots
        self._pixels = self._total = pixels
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def acquire(self, weight: int) -> None:
        """Wait for one slot and ``weight`` pixels (at most the whole budget)."""
        weight = min(weight, self._total)
        if not self._waiting and self._fits(weight):
            self._take(weight)
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (weight, turn)
        self._waiting.append(entry)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release(weight)  # granted just as its waiter gave up
            else:
                self._waiting.remove(entry)
                self._grant()
            raise

    def release(self, weight: int) -> None:
        """Give back what :meth:`acquire` took for ``weight``."""
        self._slots += 1
        self._pixels += min(weight, self._total)
        self._grant()

    def _fits(self, weight: int) -> bool:
        return self._slots > 0 and weight <= self._pixels

    def _take(self, weight: int) -> None:
        self._slots -= 1
        self._pixels -= weight

    def _grant(self) -> None:
        while self._waiting and self._fits(self._waiting[0][0]):
            weight, turn = self._waiting.popleft()
            self._take(weight)
            turn.set_result(None)


_BUDGETS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, DecodeBudget] = (
    weakref.WeakKeyDictionary()
)


def _decode_budget() -> DecodeBudget:
    """This event loop's decode budget (its futures belong to one loop)."""
    loop = asyncio.get_running_loop()
    budget = _BUDGETS.get(loop)
    if budget is None:
        budget = _BUDGETS[loop] = DecodeBudget(MAX_CONCURRENT_DECODES, DECODE_PIXEL_BUDGET)
    return budget


_PNG: Final = b"\x89PNG\r\n\x1a\n"
_JPEG: Final = b"\xff\xd8\xff"


def decode_weight(data: bytes) -> int:
    """The most pixels decoding ``data`` can hold, read from fixed places, never parsed.

    A PNG's IHDR says its size (Pillow reads the same field); a JPEG is decoded at 1/8 scale,
    and only when it has at most ``MAX_DECODE_PIXELS``; anything else may hold that many.
    """
    if len(data) >= 24 and data.startswith(_PNG) and data[12:16] == b"IHDR":
        width = int.from_bytes(data[16:20], "big")
        height = int.from_bytes(data[20:24], "big")
        return max(1, min(width * height, MAX_DECODE_PIXELS))
    if data.startswith(_JPEG):
        return MAX_DECODE_PIXELS // 64
    return MAX_DECODE_PIXELS


# --------------------------------------------------------------------------------------------
# Reading the bytes


def _reject(rule: str, message: Text) -> ImageRejected:
    return ImageRejected(Violation.of(rule, message))


_SVG_TAG: Final = re.compile(rb"<svg[\s>/]", re.IGNORECASE)
_HEIF_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
)
_AVIF_BRANDS: Final = frozenset({b"avif", b"avis"})
_VIDEO_BRANDS: Final = frozenset(
    {
        b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"qt  ",
        b"M4V ", b"M4VH", b"M4VP", b"3gp4", b"3gp5", b"3gp6", b"3g2a", b"dash", b"mmp4",
    }
)  # fmt: skip
_JXL_CONTAINER: Final = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
_JXL_CODESTREAM: Final = b"\xff\x0a"
_EBML: Final = b"\x1a\x45\xdf\xa3"  # Matroska / WebM


def _iso_brands(data: bytes) -> list[bytes]:
    """The major and compatible brands of an ISO-BMFF `ftyp` box at the start, if any."""
    if len(data) < 12 or data[4:8] != b"ftyp":
        return []
    box_size = int.from_bytes(data[:4], "big")
    end = min(box_size if box_size >= 16 else 16, len(data), 16 + 4 * 64)
    return [data[8:12], *(data[i : i + 4] for i in range(16, end - 3, 4))]


def _signature_refusal(label: str, data: bytes) -> ImageRejected | None:
    """A specific refusal for formats recognised by their first bytes, before Pillow."""
    brands = _iso_brands(data)
    if brands:
        major = brands[0]
        if major in _AVIF_BRANDS or (major in {b"mif1", b"msf1"} and _AVIF_BRANDS & set(brands)):
            return _reject(
                "avif_unsupported",
                _(
                    "{label}: AVIF images aren't supported. "
                    "Please convert it to JPEG, PNG or WebP and try again.",
                    label=_(label),
                ),
            )
        if major in _HEIF_BRANDS:
            return _reject(
                "heif_unsupported",
                _(
                    "{label}: HEIC/HEIF photos aren't supported. "
                    "Please convert it to JPEG or PNG and try again.",
                    label=_(label),
                ),
            )
        if major in _VIDEO_BRANDS or major.startswith(b"3g"):
            return _video_file(label)
    if data.startswith(_EBML):
        return _video_file(label)
    if data.startswith((_JXL_CONTAINER, _JXL_CODESTREAM)):
        return _reject(
            "jxl_unsupported",
            _(
                "{label}: JPEG XL images aren't supported. "
                "Please convert it to JPEG or PNG and try again.",
                label=_(label),
            ),
        )
    head = data[:4096].removeprefix(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"<") and _SVG_TAG.search(head):
        return _reject(
            "svg_unsupported",
            _(
                "{label}: SVG (vector) images aren't supported. "
                "Please export it as PNG or JPEG and try again.",
                label=_(label),
            ),
        )
    return None


def _video_file(label: str) -> ImageRejected:
    return _reject(
        "video_unsupported",
        _(
            "{label}: this is a video file, not a still image. Please attach a {formats} image.",
            label=_(label),
            formats=_(ALLOWED_LIST),
        ),
    )


def _unsupported_format(label: str, pillow_format: str) -> ImageRejected:
    return _reject(
        "format_unsupported",
        _(
            "{label}: {format} images aren't supported. Please use {formats}.",
            label=_(label),
            format=pillow_format,
            formats=_(ALLOWED_LIST),
        ),
    )


def _unreadable(label: str, data: bytes) -> ImageRejected:
    """Refusal for bytes none of the allowed decoders recognise; names the format if known."""
    try:
        with Image.open(io.BytesIO(data)) as other:
            known = other.format
    except Exception:  # any failure just means "not an image Pillow knows"
        known = None
    if known:
        return _unsupported_format(label, known)
    return _reject(
        "not_an_image",
        _(
            "{label}: this file isn't an image we can read (it may be damaged, incomplete or "
            "not an image at all). Please attach a {formats} image.",
            label=_(label),
            formats=_(ALLOWED_LIST),
        ),
    )


def _damaged(label: str) -> ImageRejected:
    return _reject(
        "undecodable",
        _(
            "{label}: the image is damaged or incomplete and can't be read. "
            "Please save it again (for example as PNG or JPEG) and retry.",
            label=_(label),
        ),
    )


def _too_large_to_read(label: str) -> ImageRejected:
    max_side = format_number(max(r.limit for r in RULES if r.id in {"width_max", "height_max"}))
    return _reject(
        "too_many_pixels",
        _(
            "{label}: the image has far too many pixels to process; "
            "width and height must each be less than {max_side} px.",
            label=_(label),
            max_side=max_side,
        ),
    )


def _animated(label: str, pillow_format: str) -> ImageRejected:
    kind = {
        "GIF": N_(
            "{label}: Animated GIFs aren't supported; please attach a still image "
            "(for example one frame saved as PNG)."
        ),
        "WEBP": N_(
            "{label}: Animated WebP images aren't supported; please attach a still image "
            "(for example one frame saved as PNG)."
        ),
        "PNG": N_(
            "{label}: Animated PNGs (APNG) aren't supported; please attach a still image "
            "(for example one frame saved as PNG)."
        ),
        "TIFF": N_(
            "{label}: Multi-page TIFFs aren't supported; please attach a still image "
            "(for example one frame saved as PNG)."
        ),
    }.get(
        pillow_format,
        N_(
            "{label}: Animated images aren't supported; please attach a still image "
            "(for example one frame saved as PNG)."
        ),
    )
    return _reject("animated", _(kind, label=_(label)))


def _orientation(img: Image.Image) -> int:
    """EXIF orientation 1..8, 1 when absent or unreadable."""
    if img.format == "PNG" and "exif" not in img.info:
        # PngImageFile.getexif() decodes the whole image to look for a late eXIf chunk;
        # before load() that would defeat the bomb guard, after it "exif" is already known.
        return 1
    try:
        value = img.getexif().get(EXIF_ORIENTATION)
    except Exception:  # a broken EXIF block shouldn't sink an otherwise good image
        log.debug("unreadable EXIF block ignored", exc_info=True)
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _stored_size(img: Image.Image) -> tuple[int, int]:
    """Width and height as stored in the file, before any EXIF orientation."""
    if isinstance(img, TiffImagePlugin.TiffImageFile):
        # Pillow's TIFF reader reports (and on load, transposes to) the oriented size.
        width = img.tag_v2.get(TiffImagePlugin.IMAGEWIDTH)
        height = img.tag_v2.get(TiffImagePlugin.IMAGELENGTH)
        if isinstance(width, int) and isinstance(height, int):
            return width, height
    return img.size


def _display_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    return (height, width) if orientation in SWAPPING_ORIENTATIONS else (width, height)


def inspect_image(label: str, data: bytes) -> ImageFacts:
    """What the image really is; raises ImageRejected if it is not one we accept.

    Blocking (Pillow); call `inspect_image_async` from the event loop. Pixels are decoded
    only when the header's dimensions pass the table, so the returned facts either come from
    a fully decoded image or already break a dimension rule (and `check_facts` says which).
    """
    if not data:
        raise _reject("empty_file", _("{label}: the file is empty.", label=_(label)))
    refusal = _signature_refusal(label, data)
    if refusal is not None:
        raise refusal
    try:
        with Image.open(io.BytesIO(data), formats=PILLOW_FORMATS) as img:
            return _inspect_opened(label, data, img)
    except ImageRejected:
        raise
    except Image.DecompressionBombError:
        log.info("%s: refused a decompression bomb (%d bytes)", label, len(data))
        raise _too_large_to_read(label) from None
    except UnidentifiedImageError:
        raise _unreadable(label, data) from None
    except Exception:  # Pillow signals bad data with many exception types
        log.debug("%s: image failed to decode", label, exc_info=True)
        raise _damaged(label) from None


def _inspect_opened(label: str, data: bytes, img: ImageFile.ImageFile) -> ImageFacts:
    pillow_format = img.format or ""
    if pillow_format not in ALLOWED_FORMATS and pillow_format not in JPEG_FAMILY:
        raise _unsupported_format(label, pillow_format)
    if pillow_format not in JPEG_FAMILY and getattr(img, "is_animated", False):
        raise _animated(label, pillow_format)
    raw_width, raw_height = _stored_size(img)
    if raw_width <= 0 or raw_height <= 0:
        raise _damaged(label)
    mode = img.mode
    frames = int(getattr(img, "n_frames", 1)) if pillow_format == "MPO" else 1

    def facts(orientation: int) -> ImageFacts:
        width, height = _display_size(raw_width, raw_height, orientation)
        return ImageFacts(label, pillow_format, width, height, len(data), frames, mode, orientation)

    orientation = _orientation(img)
    early = facts(orientation)
    if not dimensions_pass(early.width, early.height):
        return early  # rejected by the table anyway: no need to decode, and no bomb risk
    if raw_width * raw_height > MAX_DECODE_PIXELS:
        raise _too_large_to_read(label)
    if pillow_format in JPEG_FAMILY:
        # Decoding at 1/8 scale reads and checks every byte of the stream with 1/64 the memory.
        img.draft(None, (max(1, raw_width // 8), max(1, raw_height // 8)))
    img.load()
    if pillow_format == "PNG":
        orientation = _orientation(img)  # an eXIf chunk after the pixels is known only now
    return facts(orientation)


def _too_slow(label: str) -> ImageRejected:
    return _reject(
        "decode_time",
        _(
            "{label}: the image took too long to read (over {seconds} s). "
            "Save it again as an ordinary JPEG or PNG and try again.",
            label=_(label),
            seconds=f"{DECODE_SECONDS:g}",
        ),
    )


async def inspect_image_async(label: str, data: bytes) -> ImageFacts:
    """`inspect_image` in a worker thread, within the decode budget, answered within
    `DECODE_SECONDS`.

    A thread cannot be stopped: one that overruns keeps its share until it really ends, so
    slow images never pile up more decodes than the budget allows.
    """
    budget = _decode_budget()
    weight = decode_weight(data)
    await budget.acquire(weight)
    work = asyncio.ensure_future(asyncio.to_thread(inspect_image, label, data))
    work.add_done_callback(lambda _: budget.release(weight))
    try:
        async with asyncio.timeout(DECODE_SECONDS):
            return await asyncio.shield(work)
    except TimeoutError:
        log.warning("%s: decoding %d bytes took over %g s", label, len(data), DECODE_SECONDS)
        work.add_done_callback(_drop_result)
        raise _too_slow(label) from None


def _drop_result(work: asyncio.Future[ImageFacts]) -> None:
    """Retrieve an abandoned decode's outcome, so asyncio does not log it as never read."""
    if not work.cancelled():
        work.exception()
