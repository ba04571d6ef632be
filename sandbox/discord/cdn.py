"""Attachment storage and Discord-style signed CDN URLs."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import mimetypes
import re
import secrets
import time
from dataclasses import dataclass

from aiohttp import web
from PIL import Image

from .clock import Clock
from .errors import JSON
from .request_log import RequestLog, RequestRecord
from .snowflake import SnowflakeGenerator

_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_URL_LIFETIME_S = 24 * 3600
_REFRESH_MARGIN_S = 3600
"""A refresh re-signs a URL that expires within this, so the new one is good for a while."""
_ATTACHMENT_PATH = re.compile(
    r"(?P<media>/media)?/attachments/(?P<channel_id>\d+)/(?P<attachment_id>\d+)/"
    r"(?P<filename>[A-Za-z0-9._-]+)$"
)


@dataclass
class StoredFile:
    """The bytes of one attachment and what Discord reports about it."""

    id: int
    channel_id: int
    filename: str
    data: bytes
    content_type: str | None
    width: int | None
    height: int | None
    description: str | None = None
    issued_at: int = 0

    @property
    def size(self) -> int:
        """The file size in bytes."""
        return len(self.data)


def sanitize_filename(name: str) -> str:
    """Clean a filename as Discord does: spaces become underscores, odd characters go."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].replace(" ", "_")
    cleaned = _UNSAFE_FILENAME_CHARS.sub("", base)
    if not cleaned.strip("."):
        return "unknown"
    return cleaned


def _content_type(filename: str, declared: str | None) -> str | None:
    # Bots upload everything as application/octet-stream; Discord derives the type from the
    # filename then. A type declared by a user's client is kept as sent, trustworthy or not.
    if declared and declared != "application/octet-stream":
        return declared
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or declared


def _image_size(data: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            return int(width), int(height)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def _sniffed_type(data: bytes) -> str | None:
    """A picture or video type read from the bytes themselves, never from what was declared."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    return None


def served_headers(stored: StoredFile) -> dict[str, str]:
    """How the CDN serves a file: safe for the sandbox page, which shares its origin.

    A type declared by an uploader is kept in the attachment object (as Discord does) but
    never served: an HTML or SVG upload served as such would run script on the page's origin.
    Pictures and videos recognised by their bytes are served inline; everything else is an
    opaque download.
    """
    sniffed = _sniffed_type(stored.data)
    headers = {
        "Content-Type": sniffed or "application/octet-stream",
        "X-Content-Type-Options": "nosniff",
    }
    if sniffed is None:
        headers["Content-Disposition"] = f'attachment; filename="{stored.filename}"'
    return headers


class AttachmentStore:
    """Keeps attachment bytes and serves them under signed, expiring URLs."""

    def __init__(self, ids: SnowflakeGenerator, clock: Clock | None = None) -> None:
        self._ids = ids
        self.clock = clock or Clock()
        self._files: dict[int, StoredFile] = {}
        self._secret = secrets.token_bytes(32)
        self.base_url = "http://127.0.0.1"
        self.downloads_open = asyncio.Event()
        """A test control: cleared, downloads wait (a slow CDN) until it is set again."""
        self.downloads_open.set()
        self.downloads_waiting = 0
        """Downloads waiting for ``downloads_open`` now."""

    def add(
        self,
        channel_id: int,
        filename: str,
        data: bytes,
        content_type: str | None,
        *,
        description: str | None = None,
    ) -> StoredFile:
        """Store a new attachment and return it."""
        clean = sanitize_filename(filename)
        ctype = _content_type(clean, content_type)
        size = _image_size(data) if ctype is None or ctype.startswith("image/") else None
        stored = StoredFile(
            id=self._ids.next(),
            channel_id=channel_id,
            filename=clean,
            data=data,
            content_type=ctype,
            width=size[0] if size else None,
            height=size[1] if size else None,
            description=description,
            issued_at=int(self.clock.time()),
        )
        self._files[stored.id] = stored
        return stored

    def get(self, attachment_id: int) -> StoredFile | None:
        """An attachment by id, if stored."""
        return self._files.get(attachment_id)

    def _signature(self, path: str, expires: str, issued: str) -> str:
        message = f"{path}|{expires}|{issued}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def _signed(self, prefix: str, stored: StoredFile) -> str:
        # Reference, "Signed Attachment CDN URLs": when an app receives a payload with a
        # signed URL "(like when you fetch a message), it will be valid" - an expired
        # signature is replaced by a fresh one whenever the attachment is served again.
        if stored.issued_at + _URL_LIFETIME_S <= self.clock.time():
            stored.issued_at = int(self.clock.time())
        path = f"/attachments/{stored.channel_id}/{stored.id}/{stored.filename}"
        issued = f"{stored.issued_at:x}"
        expires = f"{stored.issued_at + _URL_LIFETIME_S:x}"
        sig = self._signature(path, expires, issued)
        return f"{self.base_url}{prefix}{path}?ex={expires}&is={issued}&hm={sig}"

    def url(self, stored: StoredFile) -> str:
        """The signed ``cdn.discordapp.com``-style URL of an attachment."""
        return self._signed("", stored)

    def proxy_url(self, stored: StoredFile) -> str:
        """The signed ``media.discordapp.net``-style URL of an attachment."""
        return self._signed("/media", stored)

    def to_dict(self, stored: StoredFile) -> JSON:
        """The attachment object as the API returns it."""
        data: JSON = {
            "id": str(stored.id),
            "filename": stored.filename,
            "size": stored.size,
            "url": self.url(stored),
            "proxy_url": self.proxy_url(stored),
        }
        if stored.content_type is not None:
            data["content_type"] = stored.content_type
        if stored.width is not None and stored.height is not None:
            data["width"] = stored.width
            data["height"] = stored.height
        if stored.description is not None:
            data["description"] = stored.description
        return data

    def refreshed(self, url: str) -> str:
        """``POST /attachments/refresh-urls`` for one URL: a freshly signed URL of the same
        attachment (whatever its query says, expired or not), or the URL unchanged when
        it names no attachment here."""
        match = _ATTACHMENT_PATH.search(url.split("?", 1)[0])
        if match is None:
            return url
        stored = self._files.get(int(match["attachment_id"]))
        if (
            stored is None
            or stored.channel_id != int(match["channel_id"])
            or stored.filename != match["filename"]
        ):
            return url
        if stored.issued_at + _URL_LIFETIME_S <= self.clock.time() + _REFRESH_MARGIN_S:
            stored.issued_at = int(self.clock.time())
        return self.proxy_url(stored) if match["media"] else self.url(stored)

    def resolve(
        self, channel_id: int, attachment_id: int, filename: str, query: dict[str, str]
    ) -> StoredFile | None:
        """The file a CDN URL names, if the URL is genuine and not expired."""
        stored = self._files.get(attachment_id)
        if stored is None or stored.channel_id != channel_id or stored.filename != filename:
            return None
        expires = query.get("ex", "")
        issued = query.get("is", "")
        given = query.get("hm", "")
        path = f"/attachments/{channel_id}/{attachment_id}/{filename}"
        if not hmac.compare_digest(given, self._signature(path, expires, issued)):
            return None
        try:
            if int(expires, 16) < self.clock.time():
                return None
        except ValueError:
            return None
        return stored


async def serve_attachment(
    store: AttachmentStore, request_log: RequestLog, request: web.Request
) -> web.StreamResponse:
    """``GET /attachments/{channel_id}/{attachment_id}/{filename}``: a stored file, if its
    signature is still good."""
    stored: StoredFile | None = store.resolve(
        int(request.match_info["channel_id"]),
        int(request.match_info["attachment_id"]),
        request.match_info["filename"],
        dict(request.query),
    )
    request_log.add(
        RequestRecord(
            request.method,
            "/attachments/{channel_id}/{attachment_id}/{filename}",
            request.path,
            200 if stored else 404,
            None,
            time.time(),
        )
    )
    if stored is None:
        return web.Response(status=404, text="This content is no longer available.")
    if not store.downloads_open.is_set():
        store.downloads_waiting += 1
        try:
            await store.downloads_open.wait()
        finally:
            store.downloads_waiting -= 1
    return web.Response(body=stored.data, headers=served_headers(stored))
