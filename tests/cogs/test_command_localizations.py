"""Every name, description and choice the commands register is in the catalogs, and the
payload Discord receives carries the Italian for each of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
from babel.messages.pofile import read_po
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where

from bot.app import EXTENSIONS, SeedanceBot
from bot.config import Config, DatabaseConfig
from bot.i18n import CHOICE, COMMAND, LOCALE_DIR, MENU
from bot.store import open_store
from cogs._i18n import CatalogTranslator

NUMBERS_AND_SIZES = {"480p", "720p", "1080p", "5", "10"}
"""Choice names that read the same in every language: never sent for translation."""


class Recorder(app_commands.Translator):
    """Notes every string discord.py asks to translate, with where it sits."""

    def __init__(self) -> None:
        self.asked: set[tuple[str | None, str]] = set()

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        where = context.location
        msg_context = {
            Where.command_name: COMMAND,
            Where.group_name: COMMAND,
            Where.parameter_name: COMMAND,
            Where.choice_name: CHOICE,
        }.get(where)
        if where is Where.command_name and isinstance(context.data, app_commands.ContextMenu):
            msg_context = MENU
        self.asked.add((msg_context, string.message))
        return None


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[SeedanceBot]:
    config = Config(database=DatabaseConfig(path=tmp_path / "db.sqlite3"))
    async with aiohttp.ClientSession() as http, open_store(config.database.path) as store:
        bot = SeedanceBot(config, http_session=http, store=store, runcomfy_token="t")
        for extension in EXTENSIONS:
            await bot.load_extension(extension)
        yield bot
        await bot.runner.close()


async def test_every_command_string_is_in_the_catalog(bot: SeedanceBot) -> None:
    recorder = Recorder()
    for command in bot.tree.get_commands():
        await command.get_translated_payload(bot.tree, recorder)
    with (LOCALE_DIR / "seedance.pot").open("rb") as handle:
        template = {(m.context, m.id) for m in read_po(handle) if m.id}
    asked = {(c, s) for c, s in recorder.asked if s not in NUMBERS_AND_SIZES}
    assert ("command", "animate") in asked and ("menu", "Animate") in asked
    assert ("choice", "week") in asked
    missing = sorted(asked - template, key=str)
    assert not missing, f"mark these for extraction (C_ or N_): {missing}"


def _payloads(bot: SeedanceBot) -> list[dict[str, Any]]:
    return [c.to_dict(bot.tree) for c in bot.tree.get_commands()]


async def test_the_registered_commands_carry_italian(bot: SeedanceBot) -> None:
    translator = CatalogTranslator()
    payload = {
        c.name: await c.get_translated_payload(bot.tree, translator)
        for c in bot.tree.get_commands()
    }
    animate = payload["animate"]
    assert animate["name_localizations"] == {"it": "anima"}
    assert animate["description_localizations"]["it"].startswith("Trasforma un")
    options = {o["name"]: o for o in animate["options"]}
    assert options["image"]["name_localizations"] == {"it": "immagine"}
    assert options["last_frame"]["name_localizations"] == {"it": "ultimo_fotogramma"}
    assert options["prompt"]["description_localizations"] == {"it": "Cosa deve succedere nel video"}
    assert payload["Animate"]["name_localizations"] == {"it": "Anima"}
    budget = next(o for o in payload["admin"]["options"] if o["name"] == "budget")
    period = next(o for o in budget["options"] if o["name"] == "period")
    assert [c.get("name_localizations") for c in period["choices"]] == [
        {"it": "giorno"},
        {"it": "settimana"},
        {"it": "mese"},
    ]
    # English stays the command's own name: the contract SPEC fixes.
    assert [c["name"] for c in _payloads(bot)] == list(payload)
