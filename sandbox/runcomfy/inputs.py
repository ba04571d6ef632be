"""What the model accepts: its input schema, the image checks, and its price."""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from sandbox.video import output_size

# The provider's paths, copied from RunComfy's API page (seeds/) rather than imported from the
# bot's client: a wrong path in the client must fail against this emulator, not be mirrored.
MODEL_ID = "bytedance/seedance-1-0/lite/image-to-video"
MODEL_PATH = f"/v1/models/{MODEL_ID}"
PROMPT_MAX_CHARS = 1900
RESOLUTIONS = ("480p", "720p", "1080p")
DURATIONS = (5, 10)
# "file_size_mb < 30", with 30 MB read as 30,000,000 bytes (the stricter reading).
IMAGE_MAX_BYTES = 30_000_000
# The largest JSON body accepted: RunComfy's ComfyUI nodes refuse to send more than 64 MiB
# (runcomfy/client.py, MAX_REQUEST_BYTES), so the service takes at least that much.
MAX_REQUEST_BYTES = 64 * 1024 * 1024
# Upstream price: $1.8 per million tokens, tokens = width * height * 24 * seconds / 1024.
USD_PER_TOKEN = 1.8 / 1_000_000
IMAGE_FIELDS = ("first_frame_image_url", "last_frame_image_url")


def validate(payload: Any) -> list[dict[str, Any]]:
    """Problems with a submit body, by the model's input schema; empty when valid."""
    if not isinstance(payload, dict):
        return [problem([], "Input should be a valid JSON object", "model_type")]
    problems = []
    for name in ("prompt", "first_frame_image_url"):
        if name not in payload:
            problems.append(problem([name], "Field required", "missing"))
    for name in ("prompt", *IMAGE_FIELDS):
        if name in payload and not isinstance(payload[name], str):
            problems.append(problem([name], "Input should be a valid string", "string_type"))
    prompt = payload.get("prompt")
    if isinstance(prompt, str) and len(prompt) > PROMPT_MAX_CHARS:
        problems.append(
            problem(
                ["prompt"],
                f"String should have at most {PROMPT_MAX_CHARS} characters",
                "string_too_long",
            )
        )
    if "resolution" in payload and payload["resolution"] not in RESOLUTIONS:
        problems.append(
            problem(["resolution"], "Input should be '480p', '720p' or '1080p'", "enum")
        )
    duration = payload.get("duration", 5)
    if isinstance(duration, bool) or not isinstance(duration, int) or duration not in DURATIONS:
        problems.append(problem(["duration"], "Input should be 5 or 10", "enum"))
    return problems


def decode_inline_images(payload: dict[str, Any]) -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    """The images sent inline as ``data:`` URIs, by field, and the problems with malformed ones.

    RunComfy's ComfyUI nodes send frames as ``data:image/png;base64,...`` (runcomfy/media.py,
    image_data_uri); the API page documents only https URLs (seeds/, "File inputs"), so only
    the form the nodes send is accepted, and a malformed one is refused at submit like any
    other invalid input (runcomfy-api.md, "Errors": 422001 with ``detail``).
    """
    images: dict[str, bytes] = {}
    problems = []
    for name in IMAGE_FIELDS:
        value = payload.get(name)
        if not (isinstance(value, str) and value[:5].lower() == "data:"):
            continue
        try:
            images[name] = _decode_data_uri(value)
        except ValueError as exc:
            problems.append(problem([name], f"Invalid data URI: {exc}", "value_error"))
    return images, problems


def _decode_data_uri(value: str) -> bytes:
    header, comma, data = value[5:].partition(",")
    if not comma:
        raise ValueError("there is no comma before the data")
    media_type, *params = (part.strip().lower() for part in header.split(";"))
    if not media_type.startswith("image/"):
        raise ValueError("the media type must be an image type (data:image/...)")
    if "base64" not in params:
        raise ValueError("the data must be base64-encoded (;base64,)")
    try:
        decoded = base64.b64decode(data, validate=True)
    except binascii.Error:
        raise ValueError("the base64 data is malformed") from None
    if not decoded:
        raise ValueError("the data is empty")
    return decoded


def problem(loc: list[str], msg: str, kind: str) -> dict[str, Any]:
    """One entry of a 422's ``detail``."""
    return {"loc": ["body", *loc], "msg": msg, "type": kind}


def image_problem(data: bytes) -> str | None:
    """The schema's validation_error for an image, or None when it passes."""
    try:
        width, height = _image_size(data)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return "The uploaded file is not a supported image."
    if not (width < 6000 and height < 6000):
        return "The uploaded image width and height must not exceed 6000 pixels."
    if not (width > 300 and height > 300):
        return "The uploaded image width and height must not be less than 300 pixels."
    if not (0.4 < width / height < 2.5):
        return "The aspect ratio range should be between 0.4 and 2.5."
    return None


def _image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return ImageOps.exif_transpose(image).size


def cost_usd(resolution: str, duration: int) -> float:
    """What a clip costs upstream, by its 16:9 size at ``resolution``."""
    width, height = output_size(resolution, 16, 9)
    return width * height * 24 * duration / 1024 * USD_PER_TOKEN
