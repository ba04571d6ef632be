"""``POST /attachments/refresh-urls`` on the emulated Discord, as bots call it."""

from __future__ import annotations

import aiohttp

from sandbox.discord import DiscordEmulator
from tests.harness.images import make_image


async def test_an_expired_attachment_url_is_signed_anew_and_others_come_back_unchanged() -> None:
    async with DiscordEmulator() as emu, aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bot {emu.bot_token}"}
        attachment = await emu.upload_attachment("frame.png", make_image(400, 400), "image/png")
        old = attachment["url"]
        emu.advance_clock(25 * 3600)
        async with http.get(old) as expired:
            assert expired.status == 404  # "This content is no longer available."

        stranger = "https://example.com/picture.png"
        async with http.post(
            f"{emu.api_base}/attachments/refresh-urls",
            json={"attachment_urls": [old, stranger]},
            headers=headers,
        ) as response:
            assert response.status == 200
            body = await response.json()
        fresh, unchanged = body["refreshed_urls"]
        assert fresh["original"] == old and fresh["refreshed"] != old
        assert fresh["refreshed"].split("?")[0] == old.split("?")[0]
        assert unchanged == {"original": stranger, "refreshed": stranger}
        async with http.get(fresh["refreshed"]) as again:
            assert again.status == 200
            assert await again.read() == emu.attachment_bytes(int(attachment["id"]))


async def test_a_bad_refresh_request_is_refused_with_50035() -> None:
    async with DiscordEmulator() as emu, aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bot {emu.bot_token}"}
        for body in ({}, {"attachment_urls": []}, {"attachment_urls": ["x"] * 51}):
            async with http.post(
                f"{emu.api_base}/attachments/refresh-urls", json=body, headers=headers
            ) as response:
                assert response.status == 400
                assert (await response.json())["code"] == 50035
        async with http.post(
            f"{emu.api_base}/attachments/refresh-urls", json={"attachment_urls": ["x"]}
        ) as unauthorized:
            assert unauthorized.status == 401
