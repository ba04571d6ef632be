"""THE input check of /animate: the prompt and every image against the provider's frame rules.

`check_request` is what production calls; `rules` holds the table and its wording, `images`
what an image's bytes really are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from bot.frames.images import inspect_image, inspect_image_async
from bot.frames.rules import (
    ALLOWED_FORMATS,
    ALLOWED_LIST,
    BYTES_PER_MB,
    IMAGE_LABEL,
    LAST_FRAME_1080P_NOTE,
    LAST_FRAME_LABEL,
    MAX_FILE_BYTES,
    PROMPT_LABEL,
    PROMPT_MAX_CHARS,
    RULES,
    AttachmentMeta,
    FrameRulesError,
    ImageFacts,
    ImageRejected,
    RequestCheck,
    Rule,
    Violation,
    check_facts,
    check_metadata,
    check_prompt,
    check_size,
    last_frame_note,
    prompt_text,
    render_violations,
)
from bot.i18n import _

__all__ = [
    "ALLOWED_FORMATS",
    "ALLOWED_LIST",
    "BYTES_PER_MB",
    "IMAGE_LABEL",
    "LAST_FRAME_1080P_NOTE",
    "LAST_FRAME_LABEL",
    "MAX_FILE_BYTES",
    "PROMPT_LABEL",
    "PROMPT_MAX_CHARS",
    "RULES",
    "AttachmentMeta",
    "AttachmentUnavailable",
    "FrameRulesError",
    "ImageFacts",
    "ImageRejected",
    "RequestCheck",
    "Rule",
    "Violation",
    "check_facts",
    "check_image",
    "check_metadata",
    "check_prompt",
    "check_request",
    "inspect_image",
    "inspect_image_async",
    "last_frame_note",
    "prompt_text",
    "render_violations",
]


class AttachmentUnavailable(Exception):
    """Raised by a request's download function when the attachment cannot be fetched."""


async def check_image(label: str, data: bytes) -> tuple[ImageFacts | None, list[Violation]]:
    """Inspect the bytes and apply every rule; facts are None when the image was refused."""
    try:
        facts = await inspect_image_async(label, data)
    except ImageRejected as exc:
        return None, [exc.violation, *check_size(label, len(data))]
    return facts, check_facts(facts)


async def check_request(
    prompt: str,
    attachments: Iterable[tuple[AttachmentMeta, Callable[[], Awaitable[bytes]]]],
) -> RequestCheck:
    """Check a whole request and report every violation at once.

    `attachments` pairs each attachment's metadata with a coroutine function that downloads
    it; an attachment that already fails on its metadata is never downloaded, and one whose
    download raises :class:`AttachmentUnavailable` is reported as a violation.
    """
    violations = check_prompt(prompt)

    async def one(
        meta: AttachmentMeta, download: Callable[[], Awaitable[bytes]]
    ) -> tuple[ImageFacts | None, bytes, list[Violation]]:
        early = check_metadata(meta)
        if early:
            return None, b"", early
        try:
            data = await download()
        except AttachmentUnavailable:
            failed = Violation.of(
                "download", _("{label}: the file could not be downloaded.", label=_(meta.label))
            )
            return None, b"", [failed]
        facts, found = await check_image(meta.label, data)
        return facts, data, found

    results = await asyncio.gather(*(one(meta, download) for meta, download in attachments))
    images: list[ImageFacts] = []
    kept: list[bytes] = []
    for facts, data, image_violations in results:
        violations.extend(image_violations)
        if facts is not None:
            images.append(facts)
            kept.append(data)
    return RequestCheck(prompt_text(prompt), tuple(images), tuple(violations), tuple(kept))
