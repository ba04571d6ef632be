"""A hostile provider answer: the video link points inward, redirects inward, or is no video.

Each case is refused with a reason safe to show the member, no bytes are left behind, and
nothing is fetched from a private address, whatever the host name says or the DNS answers.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from bot.media.download import (
    DownloadError,
    FetchPolicy,
    GuardedResolver,
    InsecureUrlError,
    NotAVideoError,
    download_video,
    url_allowed,
)
from bot.runcomfy.client import RunComfyClient, Submission, VideoInput
from bot.runcomfy.errors import ServerError, UnknownSubmissionError
from tests.harness.videos import make_video

MP4 = make_video(width=64, height=64, seconds=0.5, fps=4)
HTML = b"<!doctype html><title>login</title><form action=//evil.example>" * 50
PUBLIC_API = "https://model-api.runcomfy.net"


class StaticResolver(AbstractResolver):
    """DNS as an attacker runs it: every name answers the addresses given."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.addresses
        ]

    async def close(self) -> None:
        return None


class Cdn:
    """A file host on loopback that records every request it gets."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.url = ""
        self.app = web.Application()
        self.app.router.add_get("/{name}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.hits.append(name)
        if name == "video.mp4":
            return web.Response(body=MP4, headers={"Content-Type": "binary/octet-stream"})
        if name == "signed":
            raise web.HTTPFound(f"{self.url}/video.mp4?Signature=abc")
        if name == "page.mp4":
            return web.Response(body=HTML, headers={"Content-Type": "binary/octet-stream"})
        if name == "typed-page.mp4":
            return web.Response(body=MP4, content_type="text/html")
        if name == "tiny.mp4":
            return web.Response(body=b"\x00\x00", headers={"Content-Type": "video/mp4"})
        if name == "to-metadata":
            raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")
        if name == "to-private":
            raise web.HTTPFound("http://10.0.0.7/video.mp4")
        if name == "to-elsewhere":
            raise web.HTTPFound("http://attacker.example/video.mp4")
        raise web.HTTPNotFound()


@pytest.fixture
async def cdn() -> AsyncIterator[Cdn]:
    files = Cdn()
    runner = web.AppRunner(files.app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    files.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield files
    await runner.cleanup()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# -- names and addresses ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://files.runcomfy.net/v.mp4", True),
        ("https://serverless-api-storage.runcomfy.net/o/v.mp4", True),
        ("https://model-api.runcomfy.net/files/v.mp4", True),
        ("https://attacker.example/v.mp4", False),
        ("https://runcomfy.net.attacker.example/v.mp4", False),
        ("https://127.0.0.1/v.mp4", False),
        ("https://10.1.2.3/v.mp4", False),
        ("https://[::ffff:127.0.0.1]/v.mp4", False),
        ("https://169.254.169.254/latest/meta-data", False),
        ("https://100.64.0.1/v.mp4", False),
        ("https://localhost/v.mp4", False),
    ],
)
def test_only_allowed_hosts_over_https_beside_a_public_api(url: str, allowed: bool) -> None:
    assert url_allowed(url, base_url=PUBLIC_API) is allowed


def test_addresses_refused_whatever_the_name() -> None:
    public = FetchPolicy.for_base_url(PUBLIC_API)
    for address in ("127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
                    "100.64.0.1", "100.127.255.254", "0.0.0.0", "::1", "fe80::1", "fc00::1",
                    "::ffff:10.0.0.1", "224.0.0.1"):  # fmt: skip
        assert not public.address_allowed(address), address
    assert public.address_allowed("104.18.2.3")
    assert public.address_allowed("2606:4700::1")
    local = FetchPolicy.for_base_url("http://127.0.0.1:8000")
    assert local.address_allowed("127.0.0.1") and local.address_allowed("::1")
    assert not local.address_allowed("10.0.0.1") and not local.address_allowed("100.64.0.1")


@pytest.mark.parametrize("address", ["127.0.0.1", "10.9.8.7", "100.64.3.2", "169.254.169.254"])
async def test_an_allowed_name_resolving_inward_is_refused_at_connect(
    http: aiohttp.ClientSession, tmp_path: Path, address: str
) -> None:
    dns = StaticResolver(address)
    with pytest.raises(InsecureUrlError) as caught:
        await download_video(
            http,
            "https://files.runcomfy.net/v.mp4",
            tmp_path / "v.mp4",
            base_url=PUBLIC_API,
            max_bytes=10**6,
            resolver=dns,
        )
    assert "not a secure" in str(caught.value)
    assert dns.asked == ["files.runcomfy.net"]
    assert leftovers(tmp_path) == []


async def test_a_mixed_dns_answer_leaves_only_the_public_address_to_connect_to() -> None:
    # Rebinding within one answer: the connector gets only what the resolver returns.
    dns = StaticResolver("127.0.0.1", "104.16.0.1")
    guarded = GuardedResolver(FetchPolicy.for_base_url(PUBLIC_API), dns)
    answer = await guarded.resolve("files.runcomfy.net", 443)
    assert [r["host"] for r in answer] == ["104.16.0.1"]


# -- every hop ---------------------------------------------------------------------------------


@pytest.mark.parametrize("hop", ["to-metadata", "to-private", "to-elsewhere"])
async def test_a_redirect_inward_or_elsewhere_is_refused(
    cdn: Cdn, http: aiohttp.ClientSession, tmp_path: Path, hop: str
) -> None:
    with pytest.raises(InsecureUrlError):
        await download_video(
            http, f"{cdn.url}/{hop}", tmp_path / "v.mp4", base_url=cdn.url, max_bytes=10**6
        )
    assert cdn.hits == [hop]
    assert leftovers(tmp_path) == []


async def test_an_mp4_served_as_binary_octet_stream_through_a_redirect_is_fetched(
    cdn: Cdn, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    dest = tmp_path / "v.mp4"
    size = await download_video(http, f"{cdn.url}/signed", dest, base_url=cdn.url, max_bytes=10**6)
    assert size == len(MP4) and dest.read_bytes() == MP4
    assert cdn.hits == ["signed", "video.mp4"]


# -- the bytes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["page.mp4", "typed-page.mp4", "tiny.mp4"])
async def test_a_file_that_is_no_mp4_is_refused_and_nothing_kept(
    cdn: Cdn, http: aiohttp.ClientSession, tmp_path: Path, name: str
) -> None:
    dest = tmp_path / "v.mp4"
    with pytest.raises(NotAVideoError) as caught:
        await download_video(http, f"{cdn.url}/{name}", dest, base_url=cdn.url, max_bytes=10**6)
    assert isinstance(caught.value, DownloadError)
    assert str(caught.value) == "the file the video service returned is not an MP4 video"
    assert leftovers(tmp_path) == []


# -- provider answers ---------------------------------------------------------------------------


@pytest.fixture
async def huge_api() -> AsyncIterator[str]:
    """An API that answers every call with 8 MiB of JSON, streamed, with or without a length."""

    async def answer(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        if "sized" in request.path:
            resp.content_length = 2 + 8 * 2**20 + 2
        await resp.prepare(request)
        await resp.write(b'{"request_id": "r1", "status": "in_queue", "x": "')
        for _ in range(8):
            await resp.write(b"a" * 2**20)
        await resp.write(b'"}')
        return resp

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.mark.parametrize("path", ["/chunked", "/sized"])
async def test_an_oversized_api_answer_is_a_provider_error_not_a_memory_sink(
    http: aiohttp.ClientSession, huge_api: str, path: str
) -> None:
    client = RunComfyClient(http, token="t0ken", base_url=huge_api + path)
    sub = Submission("r1", f"{huge_api}{path}/s", f"{huge_api}{path}/r", f"{huge_api}{path}/c")
    with pytest.raises(ServerError, match="larger than 1 MiB"):
        await client.status(sub)
    with pytest.raises(UnknownSubmissionError, match="larger than 1 MiB"):
        await client.submit(VideoInput("a cat", "https://cdn/x.png", None, "480p", 5))
