"""The emulator's languages: a member's client locale and the server's preferred one reach
the bot as Discord sends them (interaction ``locale`` / ``guild_locale``, GUILD_UPDATE), and
the sandbox page switches them."""

from __future__ import annotations

import discord
import pytest

from sandbox.discord import DiscordEmulator
from tests.harness.emulated_bot import running_bot
from tests.sandbox.page_client import page_session


async def test_interactions_carry_the_member_and_server_languages() -> None:
    async with DiscordEmulator() as emu, running_bot(emu) as bot:
        first = await emu.invoke_command("slow", {})
        assert (first.payload["locale"], first.payload["guild_locale"]) == ("en-US", "en-US")
        await first.wait_response(5)

        emu.set_locale(emu.requester_id, "it")
        emu.set_guild_locale("pt-BR")
        seen: list[discord.Interaction] = []

        async def heard(interaction: discord.Interaction) -> None:
            seen.append(interaction)

        bot.add_listener(heard, "on_interaction")
        handle = await emu.invoke_command("slow", {})
        assert handle.payload["locale"] == "it"
        assert handle.payload["guild_locale"] == "pt-BR"
        assert handle.payload["guild"]["locale"] == "pt-BR"
        await handle.wait_response(5)
        # discord.py read them as Discord's own, and GUILD_UPDATE reached its guild cache.
        assert seen[-1].locale is discord.Locale.italian
        assert seen[-1].guild_locale is discord.Locale.brazil_portuguese
        guild = bot.get_guild(emu.guild_id)
        assert guild is not None and guild.preferred_locale is discord.Locale.brazil_portuguese

        # Somebody else's client is still in English.
        other = await emu.invoke_command("slow", {}, user_id=emu.member_id)
        assert other.payload["locale"] == "en-US"
        await other.wait_response(5)


async def test_a_locale_discord_does_not_have_is_refused() -> None:
    async with DiscordEmulator() as emu:
        with pytest.raises(ValueError, match="not one of Discord's locales"):
            emu.set_locale(emu.requester_id, "it-IT")
        with pytest.raises(ValueError, match="not one of Discord's locales"):
            emu.set_guild_locale("en")


async def test_the_page_switches_a_persons_and_the_servers_language() -> None:
    async with DiscordEmulator() as emu, page_session(emu) as http:
        url = emu.base_url + "/sandbox/locale"
        async with http.post(url, json={"user_id": str(emu.requester_id), "locale": "it"}) as r:
            assert r.status == 200
        async with http.post(url, json={"guild_locale": "it"}) as r:
            assert r.status == 200
        async with http.post(url, json={"guild_locale": "klingon"}) as r:
            assert r.status == 400
        async with http.get(emu.base_url + "/sandbox/info") as r:
            info = await r.json()
        assert info["guild_locale"] == "it"
        assert "it" in info["locales"] and "pt-BR" in info["locales"]
        people = {p["label"]: p["locale"] for p in info["people"]}
        assert people == {
            "requester": "it",
            "member": "en-US",
            "moderator": "en-US",
            "owner": "en-US",
        }
