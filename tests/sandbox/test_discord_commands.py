"""Command registration against the emulator over HTTP, as any client sends it."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from sandbox.discord import DiscordEmulator

GOOD: dict[str, Any] = {
    "name": "animate",
    "type": 1,
    "description": "Turn an image into a video",
    "options": [
        {
            "name": "resolution",
            "type": 3,
            "description": "Output size",
            "choices": [{"name": "480p", "value": "480p"}],
        }
    ],
}


async def _put(
    emu: DiscordEmulator, body: Any, *, guild: bool = True, query: str = ""
) -> tuple[int, Any]:
    scope = f"/guilds/{emu.guild_id}" if guild else ""
    url = f"{emu.api_base}/applications/{emu.application_id}{scope}/commands{query}"
    headers = {"Authorization": f"Bot {emu.bot_token}"}
    async with aiohttp.ClientSession() as http, http.put(url, json=body, headers=headers) as r:
        return r.status, await r.json()


async def _get(emu: DiscordEmulator, query: str = "") -> Any:
    url = f"{emu.api_base}/applications/{emu.application_id}/guilds/{emu.guild_id}/commands"
    headers = {"Authorization": f"Bot {emu.bot_token}"}
    async with aiohttp.ClientSession() as http, http.get(url + query, headers=headers) as r:
        assert r.status == 200
        return await r.json()


def _with(**changes: Any) -> dict[str, Any]:
    return {**GOOD, **changes}


def _option(**changes: Any) -> dict[str, Any]:
    return _with(options=[{**GOOD["options"][0], **changes}])


BAD: list[tuple[str, dict[str, Any], list[str]]] = [
    ("unknown locale", _with(name_localizations={"en": "animate"}), ["name_localizations", "en"]),
    (
        "upper-case localized name",
        _with(name_localizations={"de": "Animieren"}),
        ["name_localizations", "de"],
    ),
    (
        "spaced localized name",
        _with(name_localizations={"fr": "anime moi"}),
        ["name_localizations", "fr"],
    ),
    ("upper-case name", _with(name="Animate"), ["name"]),
    ("upper-case option name", _option(name="Resolution"), ["options", "0", "name"]),
    (
        "localized option name",
        _option(name_localizations={"de": "Auflösung X"}),
        ["options", "0", "name_localizations", "de"],
    ),
    ("description over 100", _with(description="x" * 101), ["description"]),
    (
        "localized description over 100",
        _with(description_localizations={"de": "x" * 101}),
        ["description_localizations", "de"],
    ),
    (
        "choice name over 100",
        _option(choices=[{"name": "n" * 101, "value": "v"}]),
        ["options", "0", "choices", "0", "name"],
    ),
    (
        "choice value over 100",
        _option(choices=[{"name": "n", "value": "v" * 101}]),
        ["options", "0", "choices", "0", "value"],
    ),
    ("unknown option type", _option(type=12), ["options", "0", "type"]),
    (
        "permissions not a number",
        _with(default_member_permissions="manage_guild"),
        ["default_member_permissions"],
    ),
    (
        "message command with a description",
        {"name": "Animate this", "type": 3, "description": "no"},
        ["description"],
    ),
    (
        "user command with options",
        {"name": "Profile", "type": 2, "options": GOOD["options"]},
        ["options"],
    ),
]


@pytest.mark.parametrize(("case", "entry", "path"), BAD, ids=[c[0] for c in BAD])
async def test_one_bad_entry_fails_the_whole_overwrite_with_50035(
    case: str, entry: dict[str, Any], path: list[str]
) -> None:
    async with DiscordEmulator() as emu:
        status, _ = await _put(emu, [GOOD])
        assert status == 200
        before = await _get(emu)

        other = {"name": "usage", "type": 1, "description": "Your credits"}
        status, body = await _put(emu, [other, entry])
        assert status == 400, case
        assert (body["code"], body["message"]) == (50035, "Invalid Form Body")
        node = body["errors"]["1"]
        for key in path:
            node = node[key]
        assert node["_errors"][0]["code"] and node["_errors"][0]["message"]
        assert await _get(emu) == before

        status, _ = await _put(emu, [other, entry], guild=False)
        assert status == 400
        assert emu.registered_commands(None) == []


async def test_localizations_are_stored_and_listed_as_discord_lists_them() -> None:
    names = {"de": "animieren", "pt-BR": "animar", "hi": "एनिमेट", "th": "ภาพเคลื่อนไหว"}
    descriptions = {"de": "Ein Bild in ein Video verwandeln"}
    entry = _with(name_localizations=names, description_localizations=descriptions)
    async with DiscordEmulator() as emu:
        status, body = await _put(emu, [entry, {"name": "Animate this", "type": 3}])
        assert status == 200
        command, menu = body
        assert command["name_localizations"] == names
        assert command["description_localizations"] == descriptions
        assert (menu["type"], menu["description"], menu["name_localizations"]) == (3, "", None)

        full = await _get(emu, "?with_localizations=true")
        assert full[0]["name_localizations"] == names
        listed = await _get(emu)
        assert "name_localizations" not in listed[0]
        assert "name_localized" not in listed[0]  # no en-US entry

        url = f"{emu.api_base}/applications/{emu.application_id}/guilds/{emu.guild_id}/commands"
        headers = {"Authorization": f"Bot {emu.bot_token}", "X-Discord-Locale": "de"}
        async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as r:
            german = await r.json()
        assert german[0]["name_localized"] == "animieren"
        assert german[0]["description_localized"] == descriptions["de"]
