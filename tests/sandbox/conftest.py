"""Emulator tests point discord.py at the emulator; put Discord's defaults back after each."""

from __future__ import annotations

from collections.abc import Iterator

import discord
import pytest


@pytest.fixture(autouse=True)
def restore_discord_endpoints() -> Iterator[None]:
    base = discord.http.Route.BASE
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    yield
    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway
