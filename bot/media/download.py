"""Fetch a finished video from RunComfy's file host: streamed, size-capped, never with the token.

The video URL comes from the provider, so it is treated like any partner URL: only hosts on an
allow-list, only https (plain http only beside a loopback base_url), and every connection (each
redirect included) checked at connect time against the addresses it actually goes to, so a
name that resolves to a private address (DNS rebinding included) is refused. The bytes must
start like an MP4 (an ISO-BMFF ``ftyp`` box) before they are handed on.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from bot.config import DEFAULT_OUTPUT_HOSTS, is_loopback_host
from bot.i18n import N_

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK_BYTES = 256 * 1024
_FTYP_OFFSET = 4
# Content types a video may come with: RunComfy's own nodes accept these (S3-style storage
# answers binary/octet-stream for an object stored without a type). The type is never trusted
# on its own (the ftyp box decides); it only lets a page or an image be refused early.
_VIDEO_TYPES = ("application/octet-stream", "binary/octet-stream")


class DownloadError(Exception):
    """The video could not be fetched; ``str()`` is safe to show a member."""


class DownloadInterrupted(DownloadError):
    """The fetch was cut short by the network or the file server (a dropped or refused
    connection, a timeout, HTTP 408, 429 or 5xx): trying again may well work."""


class VideoTooLargeError(DownloadError):
    """The video is bigger than the configured cap; ``size`` is None when only a bound is known."""

    def __init__(self, *, size: int | None, limit: int) -> None:
        super().__init__(
            N_("the video is larger than the {limit} download limit").format(
                limit=_megabytes(limit)
            )
        )
        self.size = size
        self.limit = limit


class InsecureUrlError(DownloadError):
    """The video link (or a redirect) is not one the bot may fetch; ``url`` is for the logs."""

    def __init__(self, url: str) -> None:
        super().__init__(N_("the video link is not a secure https link, so it was not downloaded"))
        self.url = url


class NotAVideoError(DownloadError):
    """The file is not an MP4 video, whatever its name and content type said."""

    def __init__(self) -> None:
        super().__init__(N_("the file the video service returned is not an MP4 video"))


class _RefusedAddress(OSError):
    """Raised inside the resolver: every address of a host is one the bot may not connect to."""


@dataclass(frozen=True)
class FetchPolicy:
    """Where videos may come from, derived from ``base_url`` and ``[runcomfy] output_hosts``."""

    hosts: tuple[str, ...]
    loopback: bool
    """base_url is on a loopback host: loopback output hosts and addresses are allowed."""
    plain_http: bool
    """base_url is plain http on loopback: plain http output URLs are allowed."""

    @classmethod
    def for_base_url(
        cls, base_url: str, output_hosts: Sequence[str] = DEFAULT_OUTPUT_HOSTS
    ) -> FetchPolicy:
        try:
            base = URL(base_url)
        except ValueError:
            base = URL()
        base_host = (base.host or "").lower().rstrip(".")
        loopback = bool(base_host) and is_loopback_host(base_host)
        hosts = tuple(h.lower().rstrip(".") for h in output_hosts)
        return cls(
            hosts=(*hosts, base_host) if base_host else hosts,
            loopback=loopback,
            plain_http=loopback and base.scheme == "http",
        )

    def host_allowed(self, host: str) -> bool:
        """On the allow-list (``*.x`` is x and anything under it), or loopback beside loopback."""
        name = host.lower().rstrip(".")
        if self.loopback and is_loopback_host(name):
            return True
        for allowed in self.hosts:
            if allowed.startswith("*."):
                domain = allowed[2:]
                if name == domain or name.endswith("." + domain):
                    return True
            elif name == allowed:
                return True
        return False

    def address_allowed(self, address: str) -> bool:
        """A public address; loopback too when base_url is on loopback. Never private,
        link-local, CGNAT, multicast or reserved, whatever name led to it."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_loopback:
            return self.loopback
        return ip.is_global and not ip.is_multicast

    def url_allowed(self, url: str) -> bool:
        try:
            parsed = URL(url)
        except ValueError:
            return False
        if not parsed.absolute or not parsed.host:
            return False
        if parsed.scheme != "https" and not (parsed.scheme == "http" and self.plain_http):
            return False
        if not self.host_allowed(parsed.host):
            return False
        try:
            ipaddress.ip_address(parsed.host.split("%", 1)[0])
        except ValueError:
            return True  # a name: its addresses are checked when it is connected to
        return self.address_allowed(parsed.host)  # aiohttp connects to a literal unresolved


class GuardedResolver(AbstractResolver):
    """Resolves with ``inner`` and keeps only the addresses ``policy`` allows.

    The connector connects to exactly what this returns, on every connection, so a name
    whose DNS answer changes between a check and the connect cannot reach a private address.
    """

    def __init__(self, policy: FetchPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner if inner is not None else aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        allowed = [r for r in found if self._policy.address_allowed(r["host"])]
        if not allowed:
            log.warning(
                "Refusing to connect to %s: it resolves to %s",
                host,
                ", ".join(sorted({r["host"] for r in found})) or "nothing",
            )
            raise _RefusedAddress(f"{host} resolves only to addresses the bot may not use")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def url_allowed(
    url: str, *, base_url: str, output_hosts: Sequence[str] = DEFAULT_OUTPUT_HOSTS
) -> bool:
    """https to an allowed host; plain http only when ``base_url`` is plain http on loopback."""
    return FetchPolicy.for_base_url(base_url, output_hosts).url_allowed(url)


async def download_video(
    session: aiohttp.ClientSession,
    url: str,
    dest: Path,
    *,
    base_url: str,
    max_bytes: int,
    timeout: float = 300.0,  # noqa: ASYNC109 - the whole download, redirects included
    output_hosts: Sequence[str] = DEFAULT_OUTPUT_HOSTS,
    resolver: AbstractResolver | None = None,
) -> int:
    """Stream the video at ``url`` into ``dest`` and return the number of bytes written.

    Redirects are followed by hand (at most MAX_REDIRECTS) so that every hop is checked
    with the :class:`FetchPolicy` of ``base_url`` and ``output_hosts``. ``session`` is the
    bot's shared session: it must carry no default credentials, but the fetch itself goes
    through a connector of its own whose :class:`GuardedResolver` (over ``resolver``, the
    system's by default) checks every address connected to. Raises :class:`NotAVideoError`
    unless the body starts with an ISO-BMFF ``ftyp`` box. The bytes land in ``dest`` only
    once complete: on failure no partial file is left behind and an existing ``dest`` is
    untouched.
    """
    if "Authorization" in session.headers or session.auth is not None:
        # Files live on a CDN; the API token must never travel there.
        raise ValueError("the HTTP session carries default credentials; refusing to download")
    policy = FetchPolicy.for_base_url(base_url, output_hosts)
    part = dest.with_name(dest.name + ".part")
    guarded = GuardedResolver(policy, resolver)
    connector = aiohttp.TCPConnector(resolver=guarded, use_dns_cache=False)
    try:
        async with (
            aiohttp.ClientSession(
                connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar()
            ) as fetcher,
            asyncio.timeout(timeout),
        ):
            return await _follow(fetcher, url, dest, part, policy=policy, max_bytes=max_bytes)
    except TimeoutError as exc:
        raise DownloadInterrupted(N_("downloading the video took too long")) from exc
    finally:
        await guarded.close()
        await asyncio.to_thread(part.unlink, missing_ok=True)


async def _follow(
    session: aiohttp.ClientSession,
    url: str,
    dest: Path,
    part: Path,
    *,
    policy: FetchPolicy,
    max_bytes: int,
) -> int:
    current = url
    per_request = aiohttp.ClientTimeout(total=None, sock_connect=30.0, sock_read=60.0)
    for _hop in range(MAX_REDIRECTS + 1):
        if not policy.url_allowed(current):
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
                        raise DownloadError(N_("the video link redirected to nowhere"))
                    current = str(URL(current, encoded=True).join(URL(location, encoded=True)))
                    continue
                if resp.status != 200:
                    log.warning("Video download from %s answered HTTP %s", current, resp.status)
                    passing = resp.status in (408, 429) or resp.status >= 500
                    raise (DownloadInterrupted if passing else DownloadError)(
                        N_(
                            "the video could not be downloaded (the file server answered "
                            "HTTP {status})"
                        ).format(status=resp.status)
                    )
                if not _video_type(resp.headers.get("Content-Type")):
                    log.warning(
                        "Video download from %s answered %s",
                        current,
                        resp.headers.get("Content-Type"),
                    )
                    raise NotAVideoError()
                if resp.content_length is not None and resp.content_length > max_bytes:
                    raise VideoTooLargeError(size=resp.content_length, limit=max_bytes)
                written = await _stream(resp, part, max_bytes)
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, _RefusedAddress):
                raise InsecureUrlError(current) from exc
            log.warning("Video download from %s failed: %s", current, exc)
            raise DownloadInterrupted(
                N_("the video could not be downloaded (connection problem)")
            ) from exc
        except aiohttp.ClientError as exc:
            log.warning("Video download from %s failed: %s", current, exc)
            raise DownloadInterrupted(
                N_("the video could not be downloaded (connection problem)")
            ) from exc
        except ValueError as exc:
            raise DownloadError(N_("the video link could not be read")) from exc
        await asyncio.to_thread(os.replace, part, dest)
        return written
    raise DownloadError(N_("the video link redirected too many times"))


def _video_type(content_type: str | None) -> bool:
    if not content_type:
        return True
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind.startswith("video/") or kind in _VIDEO_TYPES


def is_mp4_head(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file) starts with an ISO-BMFF ``ftyp`` box."""
    return head[_FTYP_OFFSET : _FTYP_OFFSET + 4] == b"ftyp"


async def _stream(resp: aiohttp.ClientResponse, part: Path, max_bytes: int) -> int:
    fh: BinaryIO = await asyncio.to_thread(part.open, "wb")
    written = 0
    head = b""
    try:
        async for chunk in resp.content.iter_chunked(_CHUNK_BYTES):
            if len(head) < _FTYP_OFFSET + 4:
                head += chunk[: _FTYP_OFFSET + 4 - len(head)]
                if len(head) >= _FTYP_OFFSET + 4 and not is_mp4_head(head):
                    raise NotAVideoError()
            written += len(chunk)
            if written > max_bytes:
                raise VideoTooLargeError(size=None, limit=max_bytes)
            await asyncio.to_thread(fh.write, chunk)
    finally:
        await asyncio.to_thread(fh.close)
    if not is_mp4_head(head):
        raise NotAVideoError()
    return written


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.3g} MB"
