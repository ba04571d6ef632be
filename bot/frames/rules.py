"""Frame rules for /animate: the provider's input schema as one table, and how a broken rule
is worded.

The table (`RULES`) mirrors the `validations` of Seedance's input schema, operators included,
plus the prompt's length. Images are judged by their bytes, never by the declared content
type: a cheap signature sniff gives specific reasons for formats Pillow must not handle
(SVG, HEIC/HEIF, AVIF, JPEG XL, video), then Pillow reads the header, and the pixels are
decoded (in a worker thread) only when the header dimensions already pass the table, which
keeps decompression bombs from ever being decoded.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Final, Literal

from bot.errors import UserFacingError
from bot.i18n import ENGLISH, N_, Text, Words, _, _n

log = logging.getLogger(__name__)

PROMPT_LABEL: Final = N_("Prompt")
IMAGE_LABEL: Final = N_("Image")
LAST_FRAME_LABEL: Final = N_("Last frame")

BYTES_PER_MB: Final = 1_000_000
"""The schema's "MB": 30 MB is read as 30,000,000 bytes, the stricter of the two readings."""

MAX_DECODE_PIXELS: Final = 6000 * 6000
"""Never decode more pixels than this, whatever the table or Pillow's own limit say."""

MAX_CONCURRENT_DECODES: Final = 4
"""Decodes running at once across the process (each in a worker thread)."""

DECODE_PIXEL_BUDGET: Final = 2 * MAX_DECODE_PIXELS
"""Pixels being decoded at once across the process: two of the largest images (each can
hold ~100 MB), or many ordinary ones."""

Quantity = Literal["prompt_chars", "width_pixels", "height_pixels", "width/height", "file_size_mb"]
Operator = Literal["<", ">", "<=", ">="]

_COMPARE: Final[Mapping[Operator, Callable[[Fraction, Fraction], bool]]] = {
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}
_OPERATOR_WORDS: Final[Mapping[Operator, str]] = {
    "<": N_("less than"),
    ">": N_("greater than"),
    "<=": N_("at most"),
    ">=": N_("at least"),
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


_ASPECT: Final = N_("aspect ratio (width ÷ height)")

RULES: Final[tuple[Rule, ...]] = (
    # The prompt: required, 1..1900 characters once surrounding whitespace is trimmed.
    Rule("prompt_min", "prompt", "prompt_chars", ">=", Fraction(1), N_("length"), "character"),
    Rule("prompt_max", "prompt", "prompt_chars", "<=", Fraction(1900), N_("length"), "character"),
    # Each image, in the order and with the operators of the schema's `validations`.
    Rule("width_max", "image", "width_pixels", "<", Fraction(6000), N_("width"), "px"),
    Rule("height_max", "image", "height_pixels", "<", Fraction(6000), N_("height"), "px"),
    Rule("width_min", "image", "width_pixels", ">", Fraction(300), N_("width"), "px"),
    Rule("height_min", "image", "height_pixels", ">", Fraction(300), N_("height"), "px"),
    Rule("aspect_min", "image", "width/height", ">", Fraction("0.4"), _ASPECT, ""),
    Rule("aspect_max", "image", "width/height", "<", Fraction("2.5"), _ASPECT, ""),
    Rule("file_size_max", "image", "file_size_mb", "<", Fraction(30), N_("file size"), "MB"),
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
JPEG_FAMILY: Final = frozenset({"JPEG", "MPO"})
PILLOW_FORMATS: Final = tuple(ALLOWED_FORMATS)
ALLOWED_LIST: Final = N_("JPEG, PNG, WebP, BMP, TIFF or a still GIF")

LAST_FRAME_1080P_NOTE: Final = N_(
    "Note: at 1080p Seedance ignores the last frame, so it won't shape how the video ends. "
    "Choose 480p or 720p if you want the last frame used."
)

EXIF_ORIENTATION: Final = 0x0112
SWAPPING_ORIENTATIONS: Final = frozenset({5, 6, 7, 8})


@dataclass(frozen=True)
class Violation:
    """One broken rule: a machine id and a member-facing sentence with the actual value
    (``message`` in English; ``text``, when set, to word it in the member's language)."""

    rule: str
    message: str
    text: Text | None = None

    @classmethod
    def of(cls, rule: str, text: Text) -> Violation:
        return cls(rule, str(text), text)

    def worded(self, t: Words) -> str:
        return self.message if self.text is None else t(self.text)


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
        return self.exif_orientation in SWAPPING_ORIENTATIONS

    @property
    def summary(self) -> str:
        """A short description for logs and status lines, e.g. `PNG 1024 x 768 px, 1.2 MB`."""
        name = "JPEG" if self.format in JPEG_FAMILY else ALLOWED_FORMATS.get(self.format, "")
        if self.size >= BYTES_PER_MB:
            size = f"{format_number(Fraction(self.size, BYTES_PER_MB), max_places=1)} MB"
        else:
            size = f"{format_number(Fraction(self.size, 1000), max_places=1)} kB"
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
    data: tuple[bytes, ...] = ()
    """The bytes of each image in ``images``, in the same order."""

    @property
    def ok(self) -> bool:
        """True when nothing was violated."""
        return not self.violations


# --------------------------------------------------------------------------------------------
# The table, applied


@dataclass(frozen=True)
class _Measurement:
    value: Fraction
    detail: Text | str = ""  # said after the value, inside the parentheses of the message


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
            violations.append(Violation.of(rule.id, _rule_message(label, rule, measurement)))
    return violations


def _rule_message(label: str, rule: Rule, measurement: _Measurement) -> Text:
    value = measurement.value
    template = (
        N_("{label}: {noun} must be {comparison} {limit} (it is exactly {value}{detail}).")
        if value == rule.limit
        else N_("{label}: {noun} must be {comparison} {limit} (it is {value}{detail}).")
    )
    return _(
        template,
        label=_(label),
        noun=_(rule.noun),
        comparison=_(_OPERATOR_WORDS[rule.op]),
        limit=_amount(rule.limit, rule.unit),
        value=_amount(value, rule.unit, near=rule.limit),
        detail=measurement.detail,
    )


def _amount(value: Fraction, unit: str, *, near: Fraction | None = None) -> Text | str:
    number = format_number(value, near=near)
    if unit == "character":
        count = int(value) if value.denominator == 1 else 2
        return _n("{number} character", "{number} characters", count, number=number)
    return f"{number} {unit}" if unit else number


def format_number(value: Fraction, *, near: Fraction | None = None, max_places: int = 2) -> str:
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
    detail = _(" after trimming spaces") if trimmed != prompt else ""
    measured: dict[Quantity, _Measurement] = {
        "prompt_chars": _Measurement(Fraction(len(trimmed)), detail)
    }
    return _evaluate(PROMPT_LABEL, "prompt", measured)


def _size_measurement(size: int) -> _Measurement:
    return _Measurement(Fraction(size, BYTES_PER_MB))


def check_size(label: str, size: int) -> list[Violation]:
    return _evaluate(label, "image", {"file_size_mb": _size_measurement(size)})


def check_metadata(meta: AttachmentMeta) -> list[Violation]:
    """The rules that can be judged before downloading: the file size Discord reports."""
    return check_size(meta.label, meta.size)


def check_facts(facts: ImageFacts) -> list[Violation]:
    """Every image rule of the table, all at once, on the displayed dimensions."""
    return _evaluate(facts.label, "image", _image_measurements(facts))


def _image_measurements(facts: ImageFacts) -> dict[Quantity, _Measurement]:
    shown: Text | str = _(", as displayed after its EXIF rotation") if facts.rotated else ""
    measured: dict[Quantity, _Measurement] = {
        "width_pixels": _Measurement(Fraction(facts.width), shown),
        "height_pixels": _Measurement(Fraction(facts.height), shown),
        "file_size_mb": _size_measurement(facts.size),
    }
    if facts.height > 0:
        dims = f"{facts.width}\N{MULTIPLICATION SIGN}{facts.height} px"
        measured["width/height"] = _Measurement(
            Fraction(facts.width, facts.height), _(": {dims}{shown}", dims=dims, shown=shown)
        )
    return measured


def dimensions_pass(width: int, height: int) -> bool:
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
# Saying it


DEFAULT_HEADING: Final = N_("Please fix the following and run /animate again:")


def render_violations(
    violations: Sequence[Violation],
    *,
    heading: str | None = DEFAULT_HEADING,
    limit: int = 2000,
    t: Words = ENGLISH,
) -> str:
    """One member-facing message listing every violation, cut to fit `limit` characters."""
    lines = [f"\N{BULLET} {v.worded(t)}" for v in violations]
    head = [t(heading)] if heading else []
    text = "\n".join([*head, *lines])
    shown = len(lines)
    while len(text) > limit and shown > 0:
        shown -= 1
        more = "\N{HORIZONTAL ELLIPSIS}" + t("and {count} more.", count=len(lines) - shown)
        text = "\n".join([*head, *lines[:shown], more])
    return text[:limit]


def last_frame_note(resolution: str, has_last_frame: bool) -> str | None:
    """The note to show when a last frame was given at 1080p, where it has no effect."""
    if has_last_frame and resolution.strip().lower() == "1080p":
        return LAST_FRAME_1080P_NOTE
    return None
