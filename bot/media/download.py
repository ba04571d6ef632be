"""Fetch a finished video from RunComfy's file host: streamed, size-capped, never with the token."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from pathlib import Path
from typing import BinaryIO

import aiohttp
from yarl import URL

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK_BYTES = 256 * 1024


class DownloadError(Exception):
    """The video could not be fetched; ``str()`` is safe to show a member."""


class VideoTooLargeError(DownloadError):
    """The video is bigger than the configured cap; ``size`` is None when only a bound is known."""

    def __init__(self, *, size: int | None, limit: int) -> None:
        super().__init__(f"the video is larger than the {_megabytes(limit)} download limit")
        self.size = size
        self.limit = limit


class InsecureUrlError(DownloadError):
    """The video link (or a redirect) is not one the bot may fetch; ``url`` is for the logs."""

    def __init__(self, url: str) -> None:
        super().__init__("the video link is not a secure https link, so it was not downloaded")
        self.url = url


def url_allowed(url: str, *, base_url: str) -> bool:
    """https is always allowed; plain http only when ``base_url`` is plain http on loopback."""
    try:
        parsed = URL(url)
    except ValueError:
        return False
    if not parsed.absolute or not parsed.host:
        return False
    if parsed.scheme == "https":
        return True
    return parsed.scheme == "http" and _is_loopback_http(base_url)


async def download_video(
    session: aiohttp.ClientSession,
    url: str,
    dest: Path,
    *,
    base_url: str,
    max_bytes: int,
    timeout: float = 300.0,  # noqa: ASYNC109 - the whole download, redirects included
) -> int:
    """Stream the video at ``url`` into ``dest`` and return the number of bytes written.

    Redirects are followed by hand (at most MAX_REDIRECTS) so that every hop is checked
    with url_allowed. The bytes land in ``dest`` only once complete: on failure no partial
    file is left behind and an existing ``dest`` is untouched.
    """
    if "Authorization" in session.headers or session.auth is not None:
        # Files live on a CDN; the API token must never travel there.
        raise ValueError("the HTTP session carries default credentials; refusing to download")
    part = dest.with_name(dest.name + ".part")
    try:
        async with asyncio.timeout(timeout):
            return await _follow(session, url, dest, part, base_url=base_url, max_bytes=max_bytes)
    except TimeoutError as exc:
        raise DownloadError("downloading the video took too long") from exc
    finally:
        await asyncio.to_thread(part.unlink, missing_ok=True)


async def _follow(
    session: aiohttp.ClientSession,
    url: str,
    dest: Path,
    part: Path,
    *,
    base_url: str,
    max_bytes: int,
) -> int:
    current = url
    per_request = aiohttp.ClientTimeout(total=None, sock_connect=30.0, sock_read=60.0)
    for _hop in range(MAX_REDIRECTS + 1):
        if not url_allowed(current, base_url=base_url):
            log.warning("Refusing to download a video from %s", current)
            raise InsecureUrlError(current)
        try:
            async with session.get(
                URL(current, encoded=True),
                allow_redirects=False,
                raise_for_status=False,
                timeout=per_request,
            ) as resp:
                if resp.status in _REDIRECT_STATUSES:
                    location = resp.headers.get("Location")
                    if not location:
                        raise DownloadError("the video link redirected to nowhere")
                    current = str(URL(current, encoded=True).join(URL(location, encoded=True)))
                    continue
                if resp.status != 200:
                    log.warning("Video download from %s answered HTTP %s", current, resp.status)
                    raise DownloadError(
                        f"the video could not be downloaded (the file server answered "
                        f"HTTP {resp.status})"
                    )
                if resp.content_length is not None and resp.content_length > max_bytes:
                    raise VideoTooLargeError(size=resp.content_length, limit=max_bytes)
                written = await _stream(resp, part, max_bytes)
        except aiohttp.ClientError as exc:
            log.warning("Video download from %s failed: %s", current, exc)
            raise DownloadError("the video could not be downloaded (connection problem)") from exc
        except ValueError as exc:
            raise DownloadError("the video link could not be read") from exc
        await asyncio.to_thread(os.replace, part, dest)
        return written
    raise DownloadError("the video link redirected too many times")


async def _stream(resp: aiohttp.ClientResponse, part: Path, max_bytes: int) -> int:
    fh: BinaryIO = await asyncio.to_thread(part.open, "wb")
    written = 0
    try:
        async for chunk in resp.content.iter_chunked(_CHUNK_BYTES):
            written += len(chunk)
            if written > max_bytes:
                raise VideoTooLargeError(size=None, limit=max_bytes)
            await asyncio.to_thread(fh.write, chunk)
    finally:
        await asyncio.to_thread(fh.close)
    return written


def _is_loopback_http(base_url: str) -> bool:
    try:
        base = URL(base_url)
    except ValueError:
        return False
    return base.scheme == "http" and base.host is not None and _is_loopback_host(base.host)


def _is_loopback_host(host: str) -> bool:
    name = host.lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.3g} MB"
