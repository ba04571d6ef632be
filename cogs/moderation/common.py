"""What the /admin command modules share: option types and how a refusal is worded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import discord
from discord import app_commands

from bot.errors import UserFacingError
from bot.i18n import _
from bot.models import MAX_CONCURRENT, MAX_CREDITS

Interaction = discord.Interaction[Any]
Credits = app_commands.Range[int, 0, MAX_CREDITS]
Jobs = app_commands.Range[int, 1, MAX_CONCURRENT]
Grant = app_commands.Range[int, -MAX_CREDITS, MAX_CREDITS]
AllowableChannel = discord.TextChannel | discord.VoiceChannel | discord.ForumChannel


@contextmanager
def refused_as(prefix: str) -> Iterator[None]:
    """Turn the store's moderator-facing ``ValueError`` into a private reply; ``prefix`` is
    a msgid (the reason is looked up in the catalogs as it is)."""
    try:
        yield
    except ValueError as exc:
        raise UserFacingError(_("{what}: {why}", what=_(prefix), why=_(str(exc)))) from None


def check_range(option: str, value: int | None, low: int, high: int) -> None:
    """Discord enforces option ranges, but a value can still arrive out of range (a stale
    client, another tool posting the interaction): refuse it with the option's own name."""
    if value is not None and not low <= value <= high:
        raise UserFacingError(
            _(
                "`{option}` must be a whole number from {low} to {high}.",
                option=option,
                low=f"{low:,}",
                high=f"{high:,}",
            )
        )
