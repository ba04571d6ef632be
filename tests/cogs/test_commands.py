"""Every cog loads, and the commands match SPEC's contract (names, options, choices)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import EXTENSIONS, SeedanceBot
from bot.config import Config, DatabaseConfig
from bot.store import open_store

ATTACHMENT, STRING, INTEGER, USER = 11, 3, 4, 6


@pytest.fixture
async def commands(tmp_path: Path) -> AsyncIterator[dict[str, dict[str, Any]]]:
    config = Config(database=DatabaseConfig(path=tmp_path / "db.sqlite3"))
    async with aiohttp.ClientSession() as http, open_store(config.database.path) as store:
        bot = SeedanceBot(config, http_session=http, store=store, runcomfy_token="t")
        for extension in EXTENSIONS:
            await bot.load_extension(extension)
        yield {c.name: c.to_dict(bot.tree) for c in bot.tree.get_commands()}
        await bot.runner.close()


def options(command: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["name"]: o for o in command.get("options", [])}


async def test_animate_matches_the_contract(commands: dict[str, dict[str, Any]]) -> None:
    animate = commands["animate"]
    opts = options(animate)
    assert list(opts) == ["image", "prompt", "last_frame", "resolution", "duration"]
    assert (opts["image"]["type"], opts["image"]["required"]) == (ATTACHMENT, True)
    assert (opts["prompt"]["type"], opts["prompt"]["required"]) == (STRING, True)
    assert opts["prompt"]["max_length"] == 1900
    assert (opts["last_frame"]["type"], opts["last_frame"]["required"]) == (ATTACHMENT, False)
    assert opts["resolution"]["type"] == STRING and not opts["resolution"]["required"]
    assert [c["value"] for c in opts["resolution"]["choices"]] == ["480p", "720p", "1080p"]
    assert opts["duration"]["type"] == INTEGER and not opts["duration"]["required"]
    assert [c["value"] for c in opts["duration"]["choices"]] == [5, 10]
    assert animate["contexts"] == [0]  # guild only


async def test_the_animate_message_command_matches_the_contract(
    commands: dict[str, dict[str, Any]],
) -> None:
    menu = commands["Animate"]
    assert menu["type"] == 3  # a message context-menu command
    assert menu["contexts"] == [0]  # guild only
    assert "options" not in menu or menu["options"] == []


async def test_usage_and_jobs(commands: dict[str, dict[str, Any]]) -> None:
    usage = options(commands["usage"])
    assert list(usage) == ["member"]
    assert (usage["member"]["type"], usage["member"]["required"]) == (USER, False)
    assert "options" not in commands["jobs"] or commands["jobs"]["options"] == []
    assert commands["usage"]["contexts"] == [0] and commands["jobs"]["contexts"] == [0]


async def test_every_description_fits_discord(commands: dict[str, dict[str, Any]]) -> None:
    for command in commands.values():
        if command["type"] != 1:
            continue  # context menus carry no description
        assert 1 <= len(command["description"]) <= 100
        for option in command.get("options", []):
            assert 1 <= len(option["description"]) <= 100


async def test_admin_is_a_guild_only_group_for_manage_server(
    commands: dict[str, dict[str, Any]],
) -> None:
    admin = commands["admin"]
    assert admin["contexts"] == [0]
    assert int(admin["default_member_permissions"]) == 32  # Manage Server
    names = {o["name"] for o in admin["options"]}
    assert {"show", "budget", "grant", "reset", "approvals", "pause", "resume", "ban"} <= names
    assert {"blocklist", "channels", "modlog", "forget"} <= names
