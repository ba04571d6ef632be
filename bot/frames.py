"""Frame rules for /animate: the provider's input schema as one table, and the image checks.

The table (`RULES`) mirrors the `validations` of Seedance's input schema, operators included,
plus the prompt's length. Images are judged by their bytes, never by the declared content
type: a cheap signature sniff gives specific reasons for formats Pillow must not handle
(SVG, HEIC/HEIF, AVIF, JPEG XL, video), then Pillow reads the header, and the pixels are
decoded (in a worker thread) only when the header dimensions already pass the table, which
keeps decompression bombs from ever being decoded.
"""

from __future__ import annotations

import asyncio
import io
import logging
import operator
import re
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Final, Literal

from PIL import Image, ImageFile, TiffImagePlugin, UnidentifiedImageError

from bot.errors import UserFacingError

log = logging.getLogger(__name__)

PROMPT_LABEL: Final = "Prompt"
IMAGE_LABEL: Final = "Image"
LAST_FRAME_LABEL: Final = "Last frame"

BYTES_PER_MB: Final = 1_000_000
"""The schema's "MB": 30 MB is read as 30,000,000 bytes, the stricter of the two readings."""

MAX_DECODE_PIXELS: Final = 6000 * 6000
"""Never decode more pixels than this, whatever the table or Pillow's own limit say."""

MAX_CONCURRENT_DECODES: Final = 2
"""Full decodes running at once across the process; each can hold ~100 MB of pixels."""

Quantity = Literal["prompt_chars", "width_pixels", "height_pixels", "width/height", "file_size_mb"]
Operator = Literal["<", ">", "<=", ">="]

_COMPARE: Final[Mapping[Operator, Callable[[Fraction, Fraction], bool]]] = {
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}
_OPERATOR_WORDS: Final[Mapping[Operator, str]] = {
    "<": "less than",
    ">": "greater than",
    "<=": "at most",
    ">=": "at least",
}


@dataclass(frozen=True)
class Rule:
    """One frame rule: `quantity op limit` must hold, e.g. `width_pixels < 6000`."""

    id: str
    applies_to: Literal["prompt", "image"]
    quantity: Quantity
    op: Operator
    limit: Fraction
    noun: str
    unit: str

    @property
    def schema_rule(self) -> str:
        """The rule as the provider's schema spells it, e.g. `width_pixels<`."""
        return f"{self.quantity}{self.op}"

    def holds(self, value: Fraction) -> bool:
        """Whether `value` satisfies this rule."""
        return _COMPARE[self.op](value, self.limit)


_ASPECT: Final = "aspect ratio (width ÷ height)"

RULES: Final[tuple[Rule, ...]] = (
    # The prompt: required, 1..1900 characters once surrounding whitespace is trimmed.
    Rule("prompt_min", "prompt", "prompt_chars", ">=", Fraction(1), "length", "character"),
    Rule("prompt_max", "prompt", "prompt_chars", "<=", Fraction(1900), "length", "character"),
    # Each image, in the order and with the operators of the schema's `validations`.
    Rule("width_max", "image", "width_pixels", "<", Fraction(6000), "width", "px"),
    Rule("height_max", "image", "height_pixels", "<", Fraction(6000), "height", "px"),
    Rule("width_min", "image", "width_pixels", ">", Fraction(300), "width", "px"),
    Rule("height_min", "image", "height_pixels", ">", Fraction(300), "height", "px"),
    Rule("aspect_min", "image", "width/height", ">", Fraction("0.4"), _ASPECT, ""),
    Rule("aspect_max", "image", "width/height", "<", Fraction("2.5"), _ASPECT, ""),
    Rule("file_size_max", "image", "file_size_mb", "<", Fraction(30), "file size", "MB"),
)

PROMPT_MAX_CHARS: Final = next(int(r.limit) for r in RULES if r.id == "prompt_max")
MAX_FILE_BYTES: Final = next(int(r.limit * BYTES_PER_MB) for r in RULES if r.id == "file_size_max")
"""Exclusive upper bound on an image's size in bytes (a file must be smaller than this)."""

ALLOWED_FORMATS: Final[Mapping[str, str]] = {
    "JPEG": "JPEG",
    "PNG": "PNG",
    "WEBP": "WebP",
    "BMP": "BMP",
    "TIFF": "TIFF",
    "GIF": "GIF",
}
"""Pillow format name -> the name members know."""

# MPO is how Pillow names a JPEG carrying extra pictures (phone depth maps, stereo pairs);
# the first picture is an ordinary JPEG, which is what any decoder shows.
# Pillow registers no opener for MPO: the JPEG opener returns it.
_JPEG_FAMILY: Final = frozenset({"JPEG", "MPO"})
_PILLOW_FORMATS: Final = tuple(ALLOWED_FORMATS)
_ALLOWED_LIST: Final = "JPEG, PNG, WebP, BMP, TIFF or a still GIF"

LAST_FRAME_1080P_NOTE: Final = (
    "Note: at 1080p Seedance ignores the last frame, so it won't shape how the video ends. "
    "Choose 480p or 720p if you want the last frame used."
)

_EXIF_ORIENTATION: Final = 0x0112
_SWAPPING_ORIENTATIONS: Final = frozenset({5, 6, 7, 8})
_DECODE_SLOTS: Final = threading.BoundedSemaphore(MAX_CONCURRENT_DECODES)


@dataclass(frozen=True)
class Violation:
    """One broken rule: a machine id and a member-facing sentence with the actual value."""

    rule: str
    message: str


@dataclass(frozen=True)
class AttachmentMeta:
    """What Discord tells us about an attachment before we download it."""

    label: str
    filename: str
    size: int
    content_type: str | None


@dataclass(frozen=True)
class ImageFacts:
    """What the bytes of an image turned out to be; width and height as displayed."""

    label: str
    format: str
    width: int
    height: int
    size: int
    frames: int
    mode: str
    exif_orientation: int = 1

    @property
    def rotated(self) -> bool:
        """Whether EXIF orientation swaps the stored width and height for display."""
        return self.exif_orientation in _SWAPPING_ORIENTATIONS

    @property
    def summary(self) -> str:
        """A short description for logs and status lines, e.g. `PNG 1024 x 768 px, 1.2 MB`."""
        name = "JPEG" if self.format in _JPEG_FAMILY else ALLOWED_FORMATS.get(self.format, "")
        if self.size >= BYTES_PER_MB:
            size = f"{_format_number(Fraction(self.size, BYTES_PER_MB), max_places=1)} MB"
        else:
            size = f"{_format_number(Fraction(self.size, 1000), max_places=1)} kB"
        return f"{name} {self.width}\N{MULTIPLICATION SIGN}{self.height} px, {size}"


class FrameRulesError(UserFacingError):
    """The request breaks frame rules; `message` lists them all for the member."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations: tuple[Violation, ...] = tuple(violations)
        super().__init__(render_violations(self.violations))


class ImageRejected(FrameRulesError):
    """The bytes are not an image we accept at all (format, animation, damage, size bomb)."""

    def __init__(self, violation: Violation) -> None:
        self.violation = violation
        super().__init__([violation])


@dataclass(frozen=True)
class RequestCheck:
    """Outcome of checking a whole /animate request: the trimmed prompt, facts, violations."""

    prompt: str
    images: tuple[ImageFacts, ...]
    violations: tuple[Violation, ...]

    @property
    def ok(self) -> bool:
        """True when nothing was violated."""
        return not self.violations


# --------------------------------------------------------------------------------------------
# The table, applied


@dataclass(frozen=True)
class _Measurement:
    value: Fraction
    detail: str = ""  # said after the value, inside the parentheses of the message


def _evaluate(
    label: str, applies_to: str, measured: Mapping[Quantity, _Measurement]
) -> list[Violation]:
    """Every rule for `applies_to` whose quantity was measured and does not hold."""
    violations = []
    for rule in RULES:
        if rule.applies_to != applies_to or rule.quantity not in measured:
            continue
        measurement = measured[rule.quantity]
        if not rule.holds(measurement.value):
            violations.append(Violation(rule.id, _rule_message(label, rule, measurement)))
    return violations


def _rule_message(label: str, rule: Rule, measurement: _Measurement) -> str:
    value = measurement.value
    exactly = "exactly " if value == rule.limit else ""
    limit_text = _format_number(rule.limit) + _unit(rule.unit, rule.limit)
    value_text = _format_number(value, near=rule.limit) + _unit(rule.unit, value)
    return (
        f"{label}: {rule.noun} must be {_OPERATOR_WORDS[rule.op]} {limit_text} "
        f"(it is {exactly}{value_text}{measurement.detail})."
    )


def _unit(unit: str, value: Fraction) -> str:
    if not unit:
        return ""
    if unit == "character" and value != 1:
        return " characters"
    return f" {unit}"


def _format_number(value: Fraction, *, near: Fraction | None = None, max_places: int = 2) -> str:
    """Plain decimal text, with enough places never to look equal to `near` when it isn't."""
    if value.denominator == 1:
        return str(value.numerator)
    first = max_places
    while first < 9 and abs(value) < Fraction(1, 10 ** (first - 1)):
        first += 1  # keep two significant digits for small values: 0.036, not 0.04
    text = ""
    for places in range(first, 12):
        rounded = round(value, places)
        text = f"{Decimal(rounded.numerator) / Decimal(rounded.denominator):.{places}f}"
        text = text.rstrip("0").rstrip(".")
        if near is None or rounded != near:
            break
    return text


def prompt_text(prompt: str) -> str:
    """The prompt as it is sent to the provider: surrounding whitespace trimmed."""
    return prompt.strip()


def check_prompt(prompt: str) -> list[Violation]:
    """The prompt's rules: 1 to 1900 characters after trimming whitespace."""
    trimmed = prompt_text(prompt)
    detail = " after trimming spaces" if trimmed != prompt else ""
    measured: dict[Quantity, _Measurement] = {
        "prompt_chars": _Measurement(Fraction(len(trimmed)), detail)
    }
    return _evaluate(PROMPT_LABEL, "prompt", measured)


def _size_measurement(size: int) -> _Measurement:
    return _Measurement(Fraction(size, BYTES_PER_MB))


def _check_size(label: str, size: int) -> list[Violation]:
    return _evaluate(label, "image", {"file_size_mb": _size_measurement(size)})


def check_metadata(meta: AttachmentMeta) -> list[Violation]:
    """The rules that can be judged before downloading: the file size Discord reports."""
    return _check_size(meta.label, meta.size)


def check_facts(facts: ImageFacts) -> list[Violation]:
    """Every image rule of the table, all at once, on the displayed dimensions."""
    return _evaluate(facts.label, "image", _image_measurements(facts))


def _image_measurements(facts: ImageFacts) -> dict[Quantity, _Measurement]:
    shown = ", as displayed after its EXIF rotation" if facts.rotated else ""
    measured: dict[Quantity, _Measurement] = {
        "width_pixels": _Measurement(Fraction(facts.width), shown),
        "height_pixels": _Measurement(Fraction(facts.height), shown),
        "file_size_mb": _size_measurement(facts.size),
    }
    if facts.height > 0:
        dims = f"{facts.width}\N{MULTIPLICATION SIGN}{facts.height} px"
        measured["width/height"] = _Measurement(
            Fraction(facts.width, facts.height), f": {dims}{shown}"
        )
    return measured


def _dimensions_pass(width: int, height: int) -> bool:
    """Whether display dimensions pass every width, height and aspect rule of the table."""
    probe = ImageFacts("", "", width, height, size=0, frames=1, mode="")
    measured = _image_measurements(probe)
    del measured["file_size_mb"]
    return all(
        rule.holds(measured[rule.quantity].value)
        for rule in RULES
        if rule.applies_to == "image" and rule.quantity in measured
    )


# --------------------------------------------------------------------------------------------
# Reading the bytes


def _reject(rule: str, message: str) -> ImageRejected:
    return ImageRejected(Violation(rule, message))


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
                f"{label}: AVIF images aren't supported. "
                "Please convert it to JPEG, PNG or WebP and try again.",
            )
        if major in _HEIF_BRANDS:
            return _reject(
                "heif_unsupported",
                f"{label}: HEIC/HEIF photos aren't supported. "
                "Please convert it to JPEG or PNG and try again.",
            )
        if major in _VIDEO_BRANDS or major.startswith(b"3g"):
            return _reject(
                "video_unsupported",
                f"{label}: this is a video file, not a still image. "
                f"Please attach a {_ALLOWED_LIST} image.",
            )
    if data.startswith(_EBML):
        return _reject(
            "video_unsupported",
            f"{label}: this is a video file, not a still image. "
            f"Please attach a {_ALLOWED_LIST} image.",
        )
    if data.startswith((_JXL_CONTAINER, _JXL_CODESTREAM)):
        return _reject(
            "jxl_unsupported",
            f"{label}: JPEG XL images aren't supported. "
            "Please convert it to JPEG or PNG and try again.",
        )
    head = data[:4096].removeprefix(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"<") and _SVG_TAG.search(head):
        return _reject(
            "svg_unsupported",
            f"{label}: SVG (vector) images aren't supported. "
            "Please export it as PNG or JPEG and try again.",
        )
    return None


def _unsupported_format(label: str, pillow_format: str) -> ImageRejected:
    return _reject(
        "format_unsupported",
        f"{label}: {pillow_format} images aren't supported. Please use {_ALLOWED_LIST}.",
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
        f"{label}: this file isn't an image we can read (it may be damaged, incomplete or "
        f"not an image at all). Please attach a {_ALLOWED_LIST} image.",
    )


def _damaged(label: str) -> ImageRejected:
    return _reject(
        "undecodable",
        f"{label}: the image is damaged or incomplete and can't be read. "
        "Please save it again (for example as PNG or JPEG) and retry.",
    )


def _too_large_to_read(label: str) -> ImageRejected:
    max_side = _format_number(max(r.limit for r in RULES if r.id in {"width_max", "height_max"}))
    return _reject(
        "too_many_pixels",
        f"{label}: the image has far too many pixels to process; "
        f"width and height must each be less than {max_side} px.",
    )


def _animated(label: str, pillow_format: str) -> ImageRejected:
    kind = {
        "GIF": "Animated GIFs aren't",
        "WEBP": "Animated WebP images aren't",
        "PNG": "Animated PNGs (APNG) aren't",
        "TIFF": "Multi-page TIFFs aren't",
    }.get(pillow_format, "Animated images aren't")
    return _reject(
        "animated",
        f"{label}: {kind} supported; please attach a still image "
        "(for example one frame saved as PNG).",
    )


def _orientation(img: Image.Image) -> int:
    """EXIF orientation 1..8, 1 when absent or unreadable."""
    if img.format == "PNG" and "exif" not in img.info:
        # PngImageFile.getexif() decodes the whole image to look for a late eXIf chunk;
        # before load() that would defeat the bomb guard, after it "exif" is already known.
        return 1
    try:
        value = img.getexif().get(_EXIF_ORIENTATION)
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
    return (height, width) if orientation in _SWAPPING_ORIENTATIONS else (width, height)


def inspect_image(label: str, data: bytes) -> ImageFacts:
    """What the image really is; raises ImageRejected if it is not one we accept.

    Blocking (Pillow); call `inspect_image_async` from the event loop. Pixels are decoded
    only when the header's dimensions pass the table, so the returned facts either come from
    a fully decoded image or already break a dimension rule (and `check_facts` says which).
    """
    if not data:
        raise _reject("empty_file", f"{label}: the file is empty.")
    refusal = _signature_refusal(label, data)
    if refusal is not None:
        raise refusal
    try:
        with Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS) as img:
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
    if pillow_format not in ALLOWED_FORMATS and pillow_format not in _JPEG_FAMILY:
        raise _unsupported_format(label, pillow_format)
    if pillow_format not in _JPEG_FAMILY and getattr(img, "is_animated", False):
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
    if not _dimensions_pass(early.width, early.height):
        return early  # rejected by the table anyway: no need to decode, and no bomb risk
    if raw_width * raw_height > MAX_DECODE_PIXELS:
        raise _too_large_to_read(label)
    if pillow_format in _JPEG_FAMILY:
        # Decoding at 1/8 scale reads and checks every byte of the stream with 1/64 the memory.
        img.draft(None, (max(1, raw_width // 8), max(1, raw_height // 8)))
    with _DECODE_SLOTS:
        img.load()
    if pillow_format == "PNG":
        orientation = _orientation(img)  # an eXIf chunk after the pixels is known only now
    return facts(orientation)


async def inspect_image_async(label: str, data: bytes) -> ImageFacts:
    """`inspect_image` in a worker thread, so decoding never blocks the event loop."""
    return await asyncio.to_thread(inspect_image, label, data)


async def check_image(label: str, data: bytes) -> tuple[ImageFacts | None, list[Violation]]:
    """Inspect the bytes and apply every rule; facts are None when the image was refused."""
    try:
        facts = await inspect_image_async(label, data)
    except ImageRejected as exc:
        return None, [exc.violation, *_check_size(label, len(data))]
    return facts, check_facts(facts)


async def check_request(
    prompt: str,
    attachments: Iterable[tuple[AttachmentMeta, Callable[[], Awaitable[bytes]]]],
) -> RequestCheck:
    """Check a whole request and report every violation at once.

    `attachments` pairs each attachment's metadata with a coroutine function that downloads
    it; an attachment that already fails on its metadata is never downloaded.
    """
    violations = check_prompt(prompt)

    async def one(
        meta: AttachmentMeta, download: Callable[[], Awaitable[bytes]]
    ) -> tuple[ImageFacts | None, list[Violation]]:
        early = check_metadata(meta)
        if early:
            return None, early
        return await check_image(meta.label, await download())

    results = await asyncio.gather(*(one(meta, download) for meta, download in attachments))
    images = []
    for facts, image_violations in results:
        violations.extend(image_violations)
        if facts is not None:
            images.append(facts)
    return RequestCheck(prompt_text(prompt), tuple(images), tuple(violations))


# --------------------------------------------------------------------------------------------
# Saying it


def render_violations(
    violations: Sequence[Violation],
    *,
    heading: str | None = "Please fix the following and run /animate again:",
    limit: int = 2000,
) -> str:
    """One member-facing message listing every violation, cut to fit `limit` characters."""
    lines = [f"\N{BULLET} {v.message}" for v in violations]
    head = [heading] if heading else []
    text = "\n".join([*head, *lines])
    shown = len(lines)
    while len(text) > limit and shown > 0:
        shown -= 1
        more = f"\N{HORIZONTAL ELLIPSIS}and {len(lines) - shown} more."
        text = "\n".join([*head, *lines[:shown], more])
    return text[:limit]


def last_frame_note(resolution: str, has_last_frame: bool) -> str | None:
    """The note to show when a last frame was given at 1080p, where it has no effect."""
    if has_last_frame and resolution.strip().lower() == "1080p":
        return LAST_FRAME_1080P_NOTE
    return None
