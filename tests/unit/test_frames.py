"""Frame rules for /animate, judged on real generated images."""

# Messages show dimensions with the multiplication sign members see.
# ruff: noqa: RUF001

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from fractions import Fraction

import pytest
from PIL import Image, features

from bot.errors import UserFacingError
from bot.frames import (
    IMAGE_LABEL,
    LAST_FRAME_1080P_NOTE,
    LAST_FRAME_LABEL,
    MAX_FILE_BYTES,
    PROMPT_MAX_CHARS,
    RULES,
    AttachmentMeta,
    FrameRulesError,
    ImageFacts,
    ImageRejected,
    Violation,
    check_facts,
    check_image,
    check_metadata,
    check_prompt,
    check_request,
    inspect_image,
    inspect_image_async,
    last_frame_note,
    render_violations,
)
from tests.harness.images import SVG, make_ftyp, make_image, make_png_claiming

# The `validations` list of first_frame_image_url (and, identically, last_frame_image_url)
# in Seedance Lite's input schema, as RunComfy publishes it.
SCHEMA_VALIDATIONS = json.loads(
    """[
    {"validation_rule": "width_pixels<", "validation_value": 6000},
    {"validation_rule": "height_pixels<", "validation_value": 6000},
    {"validation_rule": "width_pixels>", "validation_value": 300},
    {"validation_rule": "height_pixels>", "validation_value": 300},
    {"validation_rule": "width/height>", "validation_value": 0.4},
    {"validation_rule": "width/height<", "validation_value": 2.5},
    {"validation_rule": "file_size_mb<", "validation_value": 30}
    ]"""
)

ALLOWED = "JPEG, PNG, WebP, BMP, TIFF or a still GIF"


def rule_ids(violations: list[Violation]) -> set[str]:
    return {v.rule for v in violations}


async def checked(
    data: bytes, label: str = IMAGE_LABEL
) -> tuple[ImageFacts | None, list[Violation]]:
    return await check_image(label, data)


# ---------------------------------------------------------------------------------- the table


def test_image_rules_mirror_the_schema_validations_in_order() -> None:
    image_rules = [(r.schema_rule, r.limit) for r in RULES if r.applies_to == "image"]
    expected = [
        (v["validation_rule"], Fraction(str(v["validation_value"]))) for v in SCHEMA_VALIDATIONS
    ]
    assert image_rules == expected


def test_rule_ids_are_unique_and_the_prompt_limit_matches_the_schema() -> None:
    assert len({r.id for r in RULES}) == len(RULES)
    assert PROMPT_MAX_CHARS == 1900
    assert MAX_FILE_BYTES == 30_000_000


# --------------------------------------------------------------------------------- the prompt


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a", set()),
        ("x" * 1900, set()),
        ("  \n" + "x" * 1900 + "\t ", set()),
        ("", {"prompt_min"}),
        ("   \n\t ", {"prompt_min"}),
        ("x" * 1901, {"prompt_max"}),
    ],
)
def test_prompt_is_1_to_1900_characters_after_trimming(prompt: str, expected: set[str]) -> None:
    assert rule_ids(check_prompt(prompt)) == expected


def test_prompt_messages_name_the_limit_and_the_length() -> None:
    (empty,) = check_prompt("   ")
    assert empty.message == (
        "Prompt: length must be at least 1 character (it is 0 characters after trimming spaces)."
    )
    (long,) = check_prompt("y" * 2034)
    assert long.message == "Prompt: length must be at most 1900 characters (it is 2034 characters)."


# -------------------------------------------------------------------------- dimension limits


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (301, 400, set()),
        (300, 400, {"width_min"}),
        (400, 301, set()),
        (400, 300, {"height_min"}),
        (5999, 3000, set()),
        (6000, 3000, {"width_max"}),
        (3000, 5999, set()),
        (3000, 6000, {"height_max"}),
        (5999, 5999, set()),
        (301, 301, set()),
        (300, 300, {"width_min", "height_min"}),
        (401, 1000, set()),
        (400, 1000, {"aspect_min"}),
        (399, 1000, {"aspect_min"}),
        (999, 400, set()),
        (1000, 400, {"aspect_max"}),
        (1001, 400, {"aspect_max"}),
    ],
)
async def test_every_boundary_uses_the_schema_strict_operators(
    width: int, height: int, expected: set[str]
) -> None:
    facts, violations = await checked(make_image(width, height, mode="1"))
    assert rule_ids(violations) == expected
    assert facts is not None
    assert (facts.width, facts.height) == (width, height)


@pytest.mark.parametrize(
    ("width", "height", "message"),
    [
        (6000, 3000, "Image: width must be less than 6000 px (it is exactly 6000 px)."),
        (3000, 6400, "Image: height must be less than 6000 px (it is 6400 px)."),
        (300, 400, "Image: width must be greater than 300 px (it is exactly 300 px)."),
        (400, 299, "Image: height must be greater than 300 px (it is 299 px)."),
        (
            400,
            1000,
            "Image: aspect ratio (width ÷ height) must be greater than 0.4 "
            "(it is exactly 0.4: 400×1000 px).",
        ),
        (
            399,
            1000,
            "Image: aspect ratio (width ÷ height) must be greater than 0.4 "
            "(it is 0.399: 399×1000 px).",
        ),
        (
            1001,
            400,
            "Image: aspect ratio (width ÷ height) must be less than 2.5 "
            "(it is 2.502: 1001×400 px).",
        ),
    ],
)
async def test_messages_name_the_rule_and_the_actual_value(
    width: int, height: int, message: str
) -> None:
    _, violations = await checked(make_image(width, height, mode="1"))
    assert [v.message for v in violations] == [message]


async def test_every_violated_rule_is_reported_at_once() -> None:
    _, violations = await checked(make_image(250, 7000, mode="1"), label=LAST_FRAME_LABEL)
    assert [v.message for v in violations] == [
        "Last frame: height must be less than 6000 px (it is 7000 px).",
        "Last frame: width must be greater than 300 px (it is 250 px).",
        "Last frame: aspect ratio (width ÷ height) must be greater than 0.4 "
        "(it is 0.036: 250×7000 px).",
    ]


# -------------------------------------------------------------------------------- file size


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (1, set()),
        (29_999_999, set()),
        (30_000_000, {"file_size_max"}),
        (31_457_280, {"file_size_max"}),
    ],
)
def test_file_size_is_checked_from_metadata_before_download(size: int, expected: set[str]) -> None:
    meta = AttachmentMeta(IMAGE_LABEL, "photo.png", size, "image/png")
    assert rule_ids(check_metadata(meta)) == expected


def test_file_size_messages_use_decimal_megabytes() -> None:
    at_limit = check_metadata(AttachmentMeta(LAST_FRAME_LABEL, "a.jpg", 30_000_000, None))
    assert [v.message for v in at_limit] == [
        "Last frame: file size must be less than 30 MB (it is exactly 30 MB)."
    ]
    just_over = check_metadata(AttachmentMeta(IMAGE_LABEL, "a.jpg", 30_000_001, None))
    assert just_over[0].message.endswith("(it is 30.000001 MB).")
    big = check_metadata(AttachmentMeta(IMAGE_LABEL, "a.jpg", 31_457_280, None))
    assert big[0].message.endswith("(it is 31.46 MB).")


def test_facts_carry_the_size_rule_too() -> None:
    legal = ImageFacts(IMAGE_LABEL, "PNG", 1024, 768, 29_999_999, 1, "RGB")
    assert check_facts(legal) == []
    too_big = ImageFacts(IMAGE_LABEL, "PNG", 1024, 768, 30_000_000, 1, "RGB")
    assert rule_ids(check_facts(too_big)) == {"file_size_max"}


async def test_downloaded_bytes_are_measured_not_the_metadata() -> None:
    png = make_image(640, 480)
    padded = png + b"\0" * (30_000_000 - len(png))  # Pillow ignores data after IEND
    facts, violations = await checked(padded)
    assert facts is not None
    assert facts.size == 30_000_000
    assert rule_ids(violations) == {"file_size_max"}
    _, fine = await checked(padded[:-1])
    assert fine == []


# ---------------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("fmt", "mode", "frames", "expected_format"),
    [
        ("JPEG", "RGB", 1, "JPEG"),
        ("JPEG", "CMYK", 1, "JPEG"),
        ("JPEG", "L", 1, "JPEG"),
        ("PNG", "RGBA", 1, "PNG"),
        ("PNG", "P", 1, "PNG"),
        ("WEBP", "RGB", 1, "WEBP"),
        ("BMP", "RGB", 1, "BMP"),
        ("TIFF", "L", 1, "TIFF"),
        ("GIF", "P", 1, "GIF"),
        # A phone JPEG with an extra picture (depth map, stereo pair): still a still JPEG.
        ("MPO", "RGB", 2, "MPO"),
    ],
)
async def test_allowed_formats_are_accepted(
    fmt: str, mode: str, frames: int, expected_format: str
) -> None:
    facts, violations = await checked(make_image(640, 480, fmt, mode=mode, frames=frames))
    assert violations == []
    assert facts is not None
    assert (facts.format, facts.width, facts.height, facts.mode) == (
        expected_format,
        640,
        480,
        mode,
    )


async def test_cmyk_jpeg_is_accepted() -> None:
    facts, violations = await checked(make_image(1200, 900, "JPEG", mode="CMYK", noisy=True))
    assert violations == []
    assert facts is not None
    assert facts.mode == "CMYK"
    assert facts.summary.startswith("JPEG 1200×900 px, ")


@pytest.mark.parametrize(
    ("fmt", "mode", "wording"),
    [
        ("GIF", "P", "Animated GIFs aren't supported"),
        ("WEBP", "RGB", "Animated WebP images aren't supported"),
        ("PNG", "RGB", "Animated PNGs (APNG) aren't supported"),
        ("TIFF", "L", "Multi-page TIFFs aren't supported"),
    ],
)
async def test_animated_and_multi_page_images_are_refused(
    fmt: str, mode: str, wording: str
) -> None:
    facts, violations = await checked(make_image(640, 480, fmt, mode=mode, frames=3))
    assert facts is None
    assert [v.rule for v in violations] == ["animated"]
    assert violations[0].message.startswith(f"Image: {wording}; please attach a still image")


async def test_a_still_gif_is_accepted_but_its_animated_twin_is_not() -> None:
    still, ok = await checked(make_image(500, 500, "GIF", mode="L"))
    assert still is not None
    assert ok == []
    _, refused = await checked(make_image(500, 500, "GIF", mode="L", frames=2))
    assert rule_ids(refused) == {"animated"}


@pytest.mark.parametrize(
    ("data", "rule", "message"),
    [
        (
            make_ftyp("heic", ["mif1", "heic"]),
            "heif_unsupported",
            "Image: HEIC/HEIF photos aren't supported. "
            "Please convert it to JPEG or PNG and try again.",
        ),
        (make_ftyp("mif1", ["heic", "miaf"]), "heif_unsupported", None),
        (
            make_ftyp("avif", ["avif", "mif1", "miaf"]),
            "avif_unsupported",
            "Image: AVIF images aren't supported. "
            "Please convert it to JPEG, PNG or WebP and try again.",
        ),
        (make_ftyp("mif1", ["avif", "miaf"]), "avif_unsupported", None),
        (
            SVG,
            "svg_unsupported",
            "Image: SVG (vector) images aren't supported. "
            "Please export it as PNG or JPEG and try again.",
        ),
        (b"\xef\xbb\xbf  <svg xmlns='http://www.w3.org/2000/svg'/>", "svg_unsupported", None),
        (
            make_ftyp("isom", ["iso2", "avc1", "mp41"]),
            "video_unsupported",
            f"Image: this is a video file, not a still image. Please attach a {ALLOWED} image.",
        ),
        (make_ftyp("qt"), "video_unsupported", None),
        (b"\x1a\x45\xdf\xa3" + b"\0" * 40, "video_unsupported", None),
        (b"\x00\x00\x00\x0cJXL \r\n\x87\n" + b"\0" * 40, "jxl_unsupported", None),
        (b"", "empty_file", "Image: the file is empty."),
    ],
)
async def test_unsupported_kinds_get_a_specific_reason(
    data: bytes, rule: str, message: str | None
) -> None:
    facts, violations = await checked(data)
    assert facts is None
    assert [v.rule for v in violations] == [rule]
    if message is not None:
        assert violations[0].message == message


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow cannot write AVIF")
async def test_a_real_avif_file_is_refused_even_though_pillow_could_read_it() -> None:
    facts, violations = await checked(make_image(640, 480, "AVIF"))
    assert facts is None
    assert rule_ids(violations) == {"avif_unsupported"}


async def test_other_formats_pillow_knows_are_named() -> None:
    _, violations = await checked(make_image(64, 64, "ICO"))
    assert [v.message for v in violations] == [
        f"Image: ICO images aren't supported. Please use {ALLOWED}."
    ]


async def test_bytes_that_are_no_image_are_refused_whatever_their_content_type() -> None:
    data = b"<html><body>403 Forbidden</body></html>"
    meta = AttachmentMeta(IMAGE_LABEL, "cat.png", len(data), "image/png")
    assert check_metadata(meta) == []

    async def download() -> bytes:
        return data

    result = await check_request("a cat waves", [(meta, download)])
    assert not result.ok
    assert [v.message for v in result.violations] == [
        "Image: this file isn't an image we can read (it may be damaged, incomplete or "
        f"not an image at all). Please attach a {ALLOWED} image."
    ]


async def test_the_declared_content_type_does_not_decide_the_format() -> None:
    png = make_image(640, 480)
    meta = AttachmentMeta(IMAGE_LABEL, "photo.heic", len(png), "image/heic")

    async def download() -> bytes:
        return png

    result = await check_request("waves", [(meta, download)])
    assert result.ok
    assert [f.format for f in result.images] == ["PNG"]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
async def test_truncated_files_are_refused_as_damaged(fmt: str) -> None:
    whole = make_image(800, 600, fmt, mode="L", noisy=True)
    facts, ok = await checked(whole)
    assert facts is not None
    assert ok == []
    _, violations = await checked(whole[: len(whole) // 2])
    assert [v.message for v in violations] == [
        "Image: the image is damaged or incomplete and can't be read. "
        "Please save it again (for example as PNG or JPEG) and retry."
    ]


# ------------------------------------------------------------------------ decompression bombs


async def test_a_header_claiming_billions_of_pixels_is_refused_without_decoding() -> None:
    bomb = make_png_claiming(50_000, 50_000)
    assert len(bomb) < 200
    facts, violations = await checked(bomb)
    assert facts is None
    assert [v.message for v in violations] == [
        "Image: the image has far too many pixels to process; "
        "width and height must each be less than 6000 px."
    ]


async def test_oversized_headers_are_judged_by_the_table_even_without_pillows_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With Pillow's own guard switched off, the table still refuses before any decode:
    # decoding this file would fail as truncated, and no "damaged" reason appears.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    facts, violations = await checked(make_png_claiming(50_000, 50_000))
    assert facts is not None
    assert [v.message for v in violations] == [
        "Image: width must be less than 6000 px (it is 50000 px).",
        "Image: height must be less than 6000 px (it is 50000 px).",
    ]


async def test_a_large_header_below_pillows_limit_is_not_decoded() -> None:
    _, violations = await checked(make_png_claiming(7000, 7000))
    assert rule_ids(violations) == {"width_max", "height_max"}


async def test_a_legal_header_is_decoded_to_prove_the_pixels_exist() -> None:
    _, violations = await checked(make_png_claiming(5000, 5000))
    assert rule_ids(violations) == {"undecodable"}


# --------------------------------------------------------------------------- EXIF orientation


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
async def test_exif_rotation_applies_before_the_rules(fmt: str) -> None:
    # Stored 1000 by 350 (2.86, too wide), displayed 350 by 1000 (0.35, too tall).
    facts, violations = await checked(make_image(1000, 350, fmt, mode="L", exif_orientation=6))
    assert facts is not None
    assert (facts.width, facts.height, facts.rotated) == (350, 1000, True)
    assert [v.message for v in violations] == [
        "Image: aspect ratio (width ÷ height) must be greater than 0.4 "
        "(it is 0.35: 350×1000 px, as displayed after its EXIF rotation)."
    ]


@pytest.mark.parametrize(
    ("fmt", "orientation", "displayed"),
    [
        ("JPEG", 6, (500, 1000)),
        ("JPEG", 8, (500, 1000)),
        ("JPEG", 5, (500, 1000)),
        ("JPEG", 3, (1000, 500)),
        ("JPEG", 1, (1000, 500)),
        ("PNG", 6, (500, 1000)),
        ("WEBP", 8, (500, 1000)),
        ("TIFF", 6, (500, 1000)),
    ],
)
async def test_rotated_images_within_limits_are_accepted_with_display_dimensions(
    fmt: str, orientation: int, displayed: tuple[int, int]
) -> None:
    data = make_image(
        1000, 500, fmt, mode="L" if fmt == "TIFF" else "RGB", exif_orientation=orientation
    )
    facts, violations = await checked(data)
    assert violations == []
    assert facts is not None
    assert (facts.width, facts.height) == displayed
    assert facts.exif_orientation == orientation


async def test_a_rotated_image_breaking_a_width_rule_reports_display_values() -> None:
    # Stored 400 by 250, displayed 250 by 400: so it is the width that is too small.
    facts, violations = await checked(make_image(400, 250, "JPEG", exif_orientation=6))
    assert facts is not None
    assert [v.message for v in violations] == [
        "Image: width must be greater than 300 px "
        "(it is 250 px, as displayed after its EXIF rotation)."
    ]


# ----------------------------------------------------------------------- the two-stage API


def test_inspect_image_raises_with_a_member_safe_reason() -> None:
    with pytest.raises(ImageRejected) as caught:
        inspect_image(LAST_FRAME_LABEL, make_image(640, 480, "GIF", mode="L", frames=2))
    assert caught.value.violation.rule == "animated"
    assert caught.value.violation.message.startswith("Last frame: Animated GIFs")
    assert isinstance(caught.value, FrameRulesError)
    assert isinstance(caught.value, UserFacingError)  # the command tree shows it as it is
    assert caught.value.message.startswith("Please fix the following")
    assert "• Last frame: Animated GIFs" in caught.value.message


async def test_inspect_image_async_gives_the_same_facts() -> None:
    data = make_image(800, 600, "WEBP")
    assert await inspect_image_async(IMAGE_LABEL, data) == inspect_image(IMAGE_LABEL, data)


async def test_a_whole_request_reports_every_violation_and_skips_oversized_downloads() -> None:
    downloads: list[str] = []

    def source(name: str, data: bytes) -> Callable[[], Awaitable[bytes]]:
        async def download() -> bytes:
            downloads.append(name)
            return data

        return download

    first = AttachmentMeta(IMAGE_LABEL, "first.png", 31_000_000, "image/png")
    last_bytes = make_image(1000, 350, "JPEG")
    last = AttachmentMeta(LAST_FRAME_LABEL, "last.jpg", len(last_bytes), "image/jpeg")
    result = await check_request(
        "   ", [(first, source("first", b"unused")), (last, source("last", last_bytes))]
    )
    assert downloads == ["last"]
    assert [v.rule for v in result.violations] == ["prompt_min", "file_size_max", "aspect_max"]
    assert [v.message.split(":")[0] for v in result.violations] == [
        "Prompt",
        "Image",
        "Last frame",
    ]
    assert result.prompt == ""


async def test_a_good_request_passes_with_its_trimmed_prompt() -> None:
    first_bytes = make_image(1280, 720, "JPEG")
    last_bytes = make_image(1280, 720, "PNG")

    async def first() -> bytes:
        return first_bytes

    async def last() -> bytes:
        return last_bytes

    result = await check_request(
        "  a fox turns its head \n",
        [
            (AttachmentMeta(IMAGE_LABEL, "a.jpg", len(first_bytes), "image/jpeg"), first),
            (AttachmentMeta(LAST_FRAME_LABEL, "b.png", len(last_bytes), "image/png"), last),
        ],
    )
    assert result.ok
    assert result.prompt == "a fox turns its head"
    assert [(f.label, f.format) for f in result.images] == [
        (IMAGE_LABEL, "JPEG"),
        (LAST_FRAME_LABEL, "PNG"),
    ]


# ------------------------------------------------------------------------------ presentation


def test_violations_render_as_one_message() -> None:
    violations = [
        Violation("width_min", "Image: width must be greater than 300 px (it is 250 px)."),
        Violation("animated", "Last frame: Animated GIFs aren't supported."),
    ]
    assert render_violations(violations) == (
        "Please fix the following and run /animate again:\n"
        "• Image: width must be greater than 300 px (it is 250 px).\n"
        "• Last frame: Animated GIFs aren't supported."
    )
    assert render_violations(violations, heading=None).startswith("• Image")


def test_a_long_list_is_cut_to_fit_a_discord_message() -> None:
    violations = [Violation(f"r{i}", f"Image: rule {i} " + "x" * 150) for i in range(30)]
    text = render_violations(violations, limit=2000)
    assert len(text) <= 2000
    assert text.endswith("more.")
    assert "rule 0 " in text


def test_the_last_frame_note_only_applies_at_1080p_with_a_last_frame() -> None:
    assert last_frame_note("1080p", True) == LAST_FRAME_1080P_NOTE
    assert "1080p" in LAST_FRAME_1080P_NOTE
    assert last_frame_note("1080p", False) is None
    assert last_frame_note("720p", True) is None
    assert last_frame_note("480p", True) is None
