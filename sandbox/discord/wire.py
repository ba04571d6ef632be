"""Discord's HTTP wire format: JSON answers, multipart bodies, path ids, the request log."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import BodyPartReader, web

from .errors import (
    JSON,
    DiscordHTTPError,
    invalid_form,
)
from .messages import Upload

log = logging.getLogger(__name__)


API_PREFIX = r"/api/{version:v\d+}"
_FILE_FIELD = re.compile(r"files\[(\d+)\]")
_INVALID_JSON = 50109
UNKNOWN_APPLICATION = 10002

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON answer whose Content-Type is exactly ``application/json``, as Discord's."""
    return web.Response(
        status=status,
        body=json.dumps(data).encode(),
        headers={"Content-Type": "application/json"},
    )


def no_content() -> web.Response:
    """204 No Content."""
    return web.Response(status=204)


def error_response(error: DiscordHTTPError) -> web.Response:
    """An error answer with Discord's JSON body."""
    return json_response(error.body(), status=error.status)


def flag(request: web.Request, name: str) -> bool:
    """A boolean query parameter (``1``/``true``)."""
    return request.query.get(name, "").lower() in ("1", "true")


async def read_body(request: web.Request) -> tuple[JSON, list[Upload]]:
    """A JSON body, or a multipart body of ``payload_json`` plus ``files[n]``."""
    if request.content_type.startswith("multipart/"):
        payload: JSON = {}
        uploads: list[Upload] = []
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            name = part.name or ""
            if name == "payload_json":
                payload = parse_json(await part.text())
                continue
            match = _FILE_FIELD.fullmatch(name)
            if match is None:
                continue
            data = bytes(await part.read(decode=False))
            uploads.append(
                Upload(
                    index=int(match.group(1)),
                    filename=part.filename or "unknown",
                    data=data,
                    content_type=part.headers.get("Content-Type"),
                )
            )
        return payload, uploads
    raw = await request.read()
    if not raw:
        return {}, []
    return parse_json(raw.decode("utf-8", errors="replace")), []


def parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise DiscordHTTPError(
            400, _INVALID_JSON, "The request body contains invalid JSON."
        ) from None


def snowflake_param(request: web.Request, key: str) -> int:
    try:
        return int(request.match_info[key])
    except ValueError:
        raise invalid_snowflake(key) from None


def invalid_snowflake(key: str) -> DiscordHTTPError:
    """The 400 Discord answers for a path id that is not a snowflake."""
    return invalid_form(key, "NUMBER_TYPE_COERCE", "Value is not snowflake.")
