"""Fetching the finished video: https only, size-capped, no token, nothing left behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.media.download import (
    DownloadError,
    InsecureUrlError,
    VideoTooLargeError,
    download_video,
    url_allowed,
)

# An ISO-BMFF ftyp box first, as every MP4 starts; then filler: 102,400 bytes in all.
VIDEO = (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(range(256)) * 400)[:102_400]
CAP = 50_000


class FileServer:
    """A stand-in CDN on loopback that records what each request carried."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self.base_url = ""
        app = web.Application()
        app.router.add_get("/{name}", self.handle)
        self.app = app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.seen.append((name, request.headers.get("Authorization")))
        if name == "video.mp4":
            return web.Response(body=VIDEO, content_type="video/mp4")
        if name == "small.mp4":
            return web.Response(body=VIDEO[:1000], content_type="video/mp4")
        if name == "chunked.mp4":
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for start in range(0, len(VIDEO), 10_000):
                await resp.write(VIDEO[start : start + 10_000])
            await resp.write_eof()
            return resp
        if name == "declared-big.mp4":
            return web.Response(body=VIDEO, headers={"Content-Length": str(len(VIDEO))})
        if name == "cut-short.mp4":
            resp = web.StreamResponse(headers={"Content-Length": str(len(VIDEO))})
            await resp.prepare(request)
            await resp.write(VIDEO[:5_000])
            assert request.transport is not None
            request.transport.close()
            return resp
        if name == "slow.mp4":
            await asyncio.sleep(30)
        if name.startswith("hop"):
            hops = int(name.removeprefix("hop"))
            target = "small.mp4" if hops == 0 else f"hop{hops - 1}"
            raise web.HTTPFound(f"/{target}")
        if name == "to-file":
            raise web.HTTPFound("file:///etc/passwd")
        if name == "to-ftp":
            raise web.HTTPFound("ftp://files.example/video.mp4")
        if name == "to-absolute":
            raise web.HTTPTemporaryRedirect(f"{self.base_url}/small.mp4")
        if name == "to-nowhere":
            return web.Response(status=302)
        raise web.HTTPNotFound()


@pytest.fixture
async def server() -> AsyncIterator[FileServer]:
    files = FileServer()
    runner = web.AppRunner(files.app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    files.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield files
    await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def until_close_server() -> AsyncIterator[str]:
    """Answers without Content-Length or chunking: the body runs until the connection closes."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nConnection: close\r\n\r\n")
        try:
            for start in range(0, len(VIDEO), 8_000):
                writer.write(VIDEO[start : start + 8_000])
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- which links may be fetched ----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "base_url", "allowed"),
    [
        ("https://cdn.runcomfy.net/v.mp4", "https://model-api.runcomfy.net", True),
        ("https://cdn.runcomfy.net/v.mp4", "http://127.0.0.1:8000", True),
        ("http://cdn.runcomfy.net/v.mp4", "https://model-api.runcomfy.net", False),
        ("http://127.0.0.1:9/v.mp4", "https://model-api.runcomfy.net", False),
        ("http://127.0.0.1:9/v.mp4", "http://127.0.0.1:8000", True),
        ("http://127.0.0.1:9/v.mp4", "http://127.8.9.10:8000", True),
        ("http://localhost:9/v.mp4", "http://localhost:8000", True),
        ("http://[::1]:9/v.mp4", "http://[::1]:8000", True),
        ("http://127.0.0.1:9/v.mp4", "http://runcomfy.internal:8000", False),
        ("http://127.0.0.1:9/v.mp4", "http://10.0.0.5:8000", False),
        ("http://127.0.0.1:9/v.mp4", "https://127.0.0.1:8000", False),
        ("ftp://cdn.runcomfy.net/v.mp4", "http://127.0.0.1:8000", False),
        ("file:///etc/passwd", "http://127.0.0.1:8000", False),
        ("/files/v.mp4", "http://127.0.0.1:8000", False),
        ("https:///nohost", "https://model-api.runcomfy.net", False),
        ("", "https://model-api.runcomfy.net", False),
    ],
)
def test_url_allowed(url: str, base_url: str, allowed: bool) -> None:
    assert url_allowed(url, base_url=base_url) is allowed


# -- downloads ---------------------------------------------------------------------------


async def test_download_streams_the_video_to_disk_without_credentials(
    server: FileServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    dest = tmp_path / "video.mp4"

    written = await download_video(
        http, f"{server.base_url}/video.mp4", dest, base_url=server.base_url, max_bytes=10**6
    )

    assert written == len(VIDEO)
    assert dest.read_bytes() == VIDEO
    assert leftovers(tmp_path) == ["video.mp4"]
    assert server.seen == [("video.mp4", None)]


async def test_plain_http_is_refused_against_a_real_provider(
    server: FileServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    with pytest.raises(InsecureUrlError) as caught:
        await download_video(
            http,
            f"{server.base_url}/video.mp4",
            tmp_path / "v.mp4",
            base_url="https://model-api.runcomfy.net",
            max_bytes=10**6,
        )

    assert "https" in str(caught.value)
    assert server.seen == []
    assert leftovers(tmp_path) == []


async def test_declared_size_over_the_cap_is_refused_before_downloading(
    server: FileServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    with pytest.raises(VideoTooLargeError) as caught:
        await download_video(
            http,
            f"{server.base_url}/declared-big.mp4",
            tmp_path / "v.mp4",
            base_url=server.base_url,
            max_bytes=CAP,
        )

    assert caught.value.size == len(VIDEO)
    assert str(caught.value) == "the video is larger than the 0.05 MB download limit"
    assert leftovers(tmp_path) == []


async def test_chunked_video_over_the_cap_is_cut_off_and_removed(
    server: FileServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    with pytest.raises(VideoTooLargeError) as caught:
        await download_video(
            http,
            f"{server.base_url}/chunked.mp4",
            tmp_path / "v.mp4",
            base_url=server.base_url,
            max_bytes=CAP,
        )

    assert caught.value.limit == CAP
    assert leftovers(tmp_path) == []


async def test_video_without_any_length_over_the_cap_is_cut_off(
    until_close_server: str, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    with pytest.raises(VideoTooLargeError):
        await download_video(
            http,
            f"{until_close_server}/v.mp4",
            tmp_path / "v.mp4",
            base_url=until_close_server,
            max_bytes=CAP,
        )

    assert leftovers(tmp_path) == []


async def test_video_without_any_length_under_the_cap_downloads(
    until_close_server: str, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    dest = tmp_path / "v.mp4"

    written = await download_video(
        http, f"{until_close_server}/v.mp4", dest, base_url=until_close_server, max_bytes=10**6
    )

    assert written == len(VIDEO)
    assert dest.read_bytes() == VIDEO


async def test_an_interrupted_transfer_leaves_nothing_behind(
    server: FileServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    with pytest.raises(DownloadError, match="connection problem"):
        await download_video(
            http,
            f"{server.base_url}/cut-short.mp4",
            tmp_path / "v.mp4",
            base_url=server.base_url,
            max_bytes=10**6,
        )

    assert leftovers(tmp_path) == []


async def test_a_failed_download_keeps_an_older_file_untouched(
    server: FileServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    dest = tmp_path / "v.mp4"
    dest.write_bytes(b"earlier")

    with pytest.raises(VideoTooLargeError):
        await download_video(
            http, f"{server.base_url}/chunked.mp4", dest, base_url=server.base_url, max_bytes=CAP
        )

    assert dest.read_bytes() == b"earlier"
    assert leftovers(tmp_path) == ["v.mp4"]


async def test_missing_video_says_what_the_server_answered(
    server: FileServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    with pytest.raises(DownloadError) as caught:
        await download_video(
            http,
            f"{server.base_url}/gone.mp4",
            tmp_path / "v.mp4",
            base_url=server.base_url,
            max_bytes=10**6,
        )

    assert str(caught.value) == (
        "the video could not be downloaded (the file server answered HTTP 404)"
    )
    assert leftovers(tmp_path) == []


async def test_a_stalled_download_times_out(
    server: FileServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    with pytest.raises(DownloadError, match="took too long"):
        await download_video(
            http,
            f"{server.base_url}/slow.mp4",
            tmp_path / "v.mp4",
            base_url=server.base_url,
            max_bytes=10**6,
            timeout=0.2,
        )

    assert leftovers(tmp_path) == []


async def test_unreachable_file_server(http: aiohttp.ClientSession, tmp_path: Path) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()

    with pytest.raises(DownloadError, match="connection problem"):
        await download_video(
            http,
            f"http://127.0.0.1:{port}/v.mp4",
            tmp_path / "v.mp4",
            base_url=f"http://127.0.0.1:{port}",
            max_bytes=10**6,
        )


# -- redirects ---------------------------------------------------------------------------


@pytest.mark.parametrize("start", ["hop3", "to-absolute"])
async def test_redirects_are_followed_without_credentials(
    server: FileServer, http: aiohttp.ClientSession, tmp_path: Path, start: str
) -> None:
    dest = tmp_path / "v.mp4"

    written = await download_video(
        http, f"{server.base_url}/{start}", dest, base_url=server.base_url, max_bytes=10**6
    )

    assert written == 1000
    assert dest.read_bytes() == VIDEO[:1000]
    assert all(auth is None for _, auth in server.seen)
    assert server.seen[-1][0] == "small.mp4"


@pytest.mark.parametrize("start", ["to-file", "to-ftp"])
async def test_a_redirect_to_a_disallowed_link_is_refused(
    server: FileServer, http: aiohttp.ClientSession, tmp_path: Path, start: str
) -> None:
    with pytest.raises(InsecureUrlError) as caught:
        await download_video(
            http,
            f"{server.base_url}/{start}",
            tmp_path / "v.mp4",
            base_url=server.base_url,
            max_bytes=10**6,
        )

    assert not caught.value.url.startswith(server.base_url)
    assert leftovers(tmp_path) == []


async def test_too_many_redirects(
    server: FileServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    with pytest.raises(DownloadError, match="redirected too many times"):
        await download_video(
            http,
            f"{server.base_url}/hop6",
            tmp_path / "v.mp4",
            base_url=server.base_url,
            max_bytes=10**6,
        )

    assert len(server.seen) == 6
    assert leftovers(tmp_path) == []


async def test_redirect_without_a_location(
    server: FileServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    with pytest.raises(DownloadError, match="redirected to nowhere"):
        await download_video(
            http,
            f"{server.base_url}/to-nowhere",
            tmp_path / "v.mp4",
            base_url=server.base_url,
            max_bytes=10**6,
        )


async def test_a_session_with_default_credentials_is_refused(
    server: FileServer, tmp_path: Path
) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer secret"}) as leaky:
        with pytest.raises(ValueError, match="credentials"):
            await download_video(
                leaky,
                f"{server.base_url}/video.mp4",
                tmp_path / "v.mp4",
                base_url=server.base_url,
                max_bytes=10**6,
            )

    assert server.seen == []
