"""Opening the sandbox page the way a person's browser does: the printed address, then a cookie."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
from yarl import URL

from sandbox.discord import DiscordEmulator


def page_key(emu: DiscordEmulator) -> str:
    """The run's key, read from the address the sandbox prints."""
    key = URL(emu.page_url).query.get("key")
    assert key, "the page's address carries the run's key"
    return key


@contextlib.asynccontextmanager
async def page_session(emu: DiscordEmulator) -> AsyncIterator[aiohttp.ClientSession]:
    """A client that opened the printed address and holds the page's cookie."""
    # aiohttp's cookie jar ignores cookies from bare IP addresses unless told otherwise.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(emu.page_url) as response:
            assert response.status == 200
        yield http
