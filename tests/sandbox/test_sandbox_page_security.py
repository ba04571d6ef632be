"""The sandbox page is for the person who started it: other sites, big bodies, hostile uploads.

Every test talks to the real page server over HTTP or its websocket, as a browser (or a
hostile page in one) would.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest
from yarl import URL

from sandbox.discord import DiscordEmulator
from tests.harness.emulated_bot import png_bytes
from tests.sandbox.page_client import page_key, page_session

MIB = 1024 * 1024
EVIL = "http://evil.example"


async def test_page_routes_and_events_refuse_a_visitor_without_the_runs_key() -> None:
    async with DiscordEmulator() as emu, aiohttp.ClientSession() as http:
        base = emu.base_url
        for path in ("/", "/static/app.js", "/sandbox/info", "/sandbox/commands"):
            async with http.get(base + path) as response:
                assert response.status == 403, path
        async with http.get(f"{base}/sandbox/messages?user_id={emu.requester_id}") as response:
            assert response.status == 403
        form = aiohttp.FormData({"command": "usage", "user_id": str(emu.requester_id)})
        async with http.post(base + "/sandbox/invoke", data=form) as response:
            assert response.status == 403
            assert "seedance-bot sandbox" in (await response.json())["error"]
        click = {"message_id": "1", "custom_id": "x", "user_id": str(emu.requester_id)}
        async with http.post(base + "/sandbox/click", json=click) as response:
            assert response.status == 403
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(base + "/sandbox/events")
        assert refused.value.status == 403
        async with http.get(f"{base}/?key=not-the-key") as response:
            assert response.status == 403


async def test_the_printed_address_lets_the_browser_in_and_keeps_the_key_out_of_sight() -> None:
    async with DiscordEmulator() as emu, page_session(emu) as http:
        async with http.get(emu.page_url) as response:
            # The key is swapped for a cookie, so it stays out of history and the address bar.
            assert [str(r.url) for r in response.history] == [emu.page_url]
            assert response.url == URL(emu.base_url + "/")
            assert "text/html" in response.headers["Content-Type"]
        cookie = next(iter(http.cookie_jar))
        assert cookie.value == page_key(emu)
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Strict"
        async with http.get(emu.base_url + "/sandbox/info") as response:
            assert response.status == 200
        async with http.ws_connect(emu.base_url + "/sandbox/events", origin=emu.base_url) as ws:
            await emu.send_user_message("hello")
            event = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
            assert event["type"] == "message_create"


async def test_another_sites_origin_or_host_is_refused_even_with_the_key() -> None:
    async with DiscordEmulator() as emu, page_session(emu) as http:
        base = emu.base_url
        # A page on another site: the browser sends the cookie only on top-level navigation,
        # but a site that guessed or stole the key must still not be able to drive the page.
        form = aiohttp.FormData({"command": "usage", "user_id": str(emu.requester_id)})
        headers = {"Origin": EVIL}
        async with http.post(base + "/sandbox/invoke", data=form, headers=headers) as response:
            assert response.status == 403
        async with http.post(
            base + "/sandbox/click", json={"message_id": "1"}, headers={"Origin": "null"}
        ) as response:
            assert response.status == 403
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(base + "/sandbox/events", origin=EVIL)
        assert refused.value.status == 403
        # A tag on a page served from another port of this machine (the same site, for cookies).
        tag = {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors"}
        async with http.get(f"{base}/sandbox/messages", headers=tag) as response:
            assert response.status == 403
        # DNS rebinding: another name that resolves to this machine.
        port = URL(base).port
        rebound = {"Host": f"evil.example:{port}"}
        async with http.get(f"{base}/sandbox/info", headers=rebound) as response:
            assert response.status == 403
        # The same page's own requests pass, under either loopback name.
        async with http.get(base + "/sandbox/info", headers={"Origin": base}) as response:
            assert response.status == 200
        local = {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"}
        async with http.get(base + "/sandbox/info", headers=local) as response:
            assert response.status == 200


async def test_the_bots_own_api_needs_no_page_key() -> None:
    async with DiscordEmulator() as emu, aiohttp.ClientSession() as http:
        auth = {"Authorization": f"Bot {emu.bot_token}", "Origin": EVIL}
        async with http.get(emu.api_base + "/users/@me", headers=auth) as response:
            assert response.status == 200
        async with http.get(emu.api_base + "/gateway") as response:
            assert response.status == 200


async def test_a_page_body_claiming_a_gibibyte_is_refused_at_once_with_413() -> None:
    async with DiscordEmulator() as emu:
        url = URL(emu.base_url)
        assert url.host is not None and url.port is not None
        reader, writer = await asyncio.open_connection(url.host, url.port)
        try:
            writer.write(
                (
                    f"POST /sandbox/invoke?key={page_key(emu)} HTTP/1.1\r\n"
                    f"Host: {url.host}:{url.port}\r\n"
                    "Content-Type: multipart/form-data; boundary=x\r\n"
                    f"Content-Length: {1024**3}\r\n\r\n--x\r\n"
                ).encode()
            )
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), 5)
        finally:
            writer.close()
        assert status.split()[1] == b"413"


async def test_a_streamed_body_over_the_limit_is_refused_with_413() -> None:
    async with DiscordEmulator() as emu, page_session(emu) as http:

        async def chunks() -> AsyncIterator[bytes]:
            # No Content-Length: the limit must hold while the body is read, not only up front.
            yield (
                b'--x\r\nContent-Disposition: form-data; name="file:image"; filename="a.png"'
                b"\r\nContent-Type: image/png\r\n\r\n"
            )
            for _ in range(33):
                yield b"\0" * MIB
            yield b"\r\n--x--\r\n"

        headers = {"Content-Type": "multipart/form-data; boundary=x"}
        async with http.post(
            emu.base_url + "/sandbox/invoke", data=chunks(), headers=headers
        ) as response:
            assert response.status == 413
            assert "32 MiB" in (await response.json())["error"]


async def test_an_image_just_under_the_bots_30_mb_limit_still_goes_through_the_page() -> None:
    async with DiscordEmulator() as emu, page_session(emu) as http:
        form = aiohttp.FormData()
        form.add_field("command", "animate")
        form.add_field("user_id", str(emu.requester_id))
        form.add_field("options", "{}")
        big = png_bytes() + b"\0" * (30_000_000 - 1 - len(png_bytes()))
        form.add_field("file:image", big, filename="big.png", content_type="image/png")
        async with http.post(emu.base_url + "/sandbox/invoke", data=form) as response:
            # Not the page's 413: the request reaches Discord, where no bot registered it yet.
            assert response.status == 400
            assert "not registered" in (await response.json())["error"]


@pytest.mark.parametrize(
    ("filename", "declared", "data"),
    [
        ("page.html", "text/html", b"<!doctype html><script>alert(document.cookie)</script>"),
        ("logo.svg", "image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg" onload="x()"/>'),
        ("fake.png", "image/png", b"<html><script>alert(1)</script></html>"),
        ("notes.txt", None, b"<script>alert(1)</script>"),
    ],
)
async def test_uploads_that_are_not_pictures_are_served_as_downloads(
    filename: str, declared: str | None, data: bytes
) -> None:
    async with DiscordEmulator() as emu, aiohttp.ClientSession() as http:
        attachment = await emu.upload_attachment(filename, data, declared)
        async with http.get(attachment["url"]) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "application/octet-stream"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Content-Disposition"].startswith("attachment")
            assert await response.read() == data


async def test_uploaded_pictures_are_served_inline_with_their_real_type() -> None:
    async with DiscordEmulator() as emu, aiohttp.ClientSession() as http:
        # Declared as HTML by a hostile client, but the bytes are a PNG.
        attachment = await emu.upload_attachment("cat.png", png_bytes(), "text/html")
        async with http.get(attachment["url"]) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "image/png"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert "Content-Disposition" not in response.headers


async def test_the_page_sends_a_content_security_policy() -> None:
    async with DiscordEmulator() as emu, page_session(emu) as http:
        for path in ("/", "/sandbox/info"):
            async with http.get(emu.base_url + path) as response:
                assert response.status == 200
                policy = response.headers["Content-Security-Policy"]
                assert "script-src 'self'" in policy
                assert "default-src 'none'" in policy
                assert "frame-ancestors 'none'" in policy
                assert response.headers["X-Content-Type-Options"] == "nosniff"
                assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(("host", "warned"), [("0.0.0.0", True), ("127.0.0.1", False)])
async def test_seedance_bot_sandbox_prints_its_keyed_address_and_warns_off_loopback(
    host: str, warned: bool
) -> None:
    command = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]
    args = ["sandbox", "--host", host, "--port", "0", "--log-level", "ERROR"]
    process = await asyncio.create_subprocess_exec(
        *command,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
    finally:
        process.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    address = next(word for word in line.split() if word.startswith("http://"))
    assert URL(address).query.get("key")
    warning = err.decode()
    if warned:
        assert "anyone who can reach" in warning
        assert "--host 127.0.0.1" in warning
    else:
        assert "anyone who can reach" not in warning
