"""Whose language a message is in, and the commands' names and descriptions in every catalog.

What the bot tells one member privately follows that member's Discord language
(``interaction.locale``); what it posts in a channel follows the server's
(``interaction.guild_locale``, or ``guild.preferred_locale`` away from an interaction).
English is the fallback everywhere.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where

from bot.i18n import CHOICE, COMMAND, MENU, Words, words_for

log = logging.getLogger(__name__)

_CONTEXTS = {
    Where.command_name: COMMAND,
    Where.group_name: COMMAND,
    Where.parameter_name: COMMAND,
    Where.choice_name: CHOICE,
}
# Discord's rule for slash command and option names: lowercase where a letter has a case.
_CHAT_NAME = re.compile(r"^[-_'\w\u0900-\u097F\u0E00-\u0E7F]{1,32}$")


def valid_command_name(name: str) -> bool:
    """Whether Discord takes ``name`` as a slash command's or an option's name."""
    return bool(_CHAT_NAME.match(name)) and name == name.lower()


class CatalogTranslator(app_commands.Translator):
    """discord.py's translator over the bot's gettext catalogs: command and option names (in
    the ``command`` context), context-menu names (``menu``), choices (``choice``) and
    descriptions (no context)."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        words = words_for(locale)
        if words.is_english:
            return None
        where = context.location
        msg_context = _CONTEXTS.get(where)
        if where is Where.command_name and isinstance(context.data, app_commands.ContextMenu):
            msg_context = MENU
        found = words.lookup(msg_context, string.message)
        if found is None:
            return None
        if msg_context == COMMAND and not valid_command_name(found):
            log.warning("catalog %s: %r is no valid command name; not used", locale, found)
            return None
        if msg_context == MENU and not 1 <= len(found.strip()) <= 32:
            log.warning("catalog %s: %r is no valid menu name; not used", locale, found)
            return None
        return found


def private_words(interaction: discord.Interaction[Any]) -> Words:
    """The words of a private answer: the member's own Discord language."""
    return words_for(interaction.locale)


def public_words(interaction: discord.Interaction[Any]) -> Words:
    """The words of a channel post made for an interaction: the server's language."""
    return words_for(interaction.guild_locale)


def guild_words(client: discord.Client, guild_id: int | None) -> Words:
    """The words of a channel post made away from any interaction (a job's status, the
    mod-log): the server's preferred language as Discord last told the bot."""
    guild = client.get_guild(guild_id) if guild_id is not None else None
    return words_for(guild.preferred_locale if guild is not None else None)
