"""The one error funnel for application commands."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
from discord import app_commands

from bot.errors import UserFacingError
from bot.i18n import Text, _
from cogs._i18n import private_words

log = logging.getLogger(__name__)

UNEXPECTED = _("Something went wrong on the bot's side. Nothing was charged; please try again.")


def error_message(error: app_commands.AppCommandError) -> Text | None:
    """The member-facing text for an expected error, or None for a bug."""
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(original, UserFacingError):
        return original.text
    if isinstance(error, app_commands.NoPrivateMessage):
        return _("This command only works in a server.")
    if isinstance(error, app_commands.MissingPermissions):
        return _("You need the Manage Server permission to do that.")
    if isinstance(error, app_commands.BotMissingPermissions):
        missing = ", ".join(p.replace("_", " ").title() for p in error.missing_permissions)
        return _("I am missing these permissions in this channel: {missing}.", missing=missing)
    if isinstance(error, app_commands.CommandOnCooldown):
        return _("Slow down: try again in {seconds} s.", seconds=f"{error.retry_after:.0f}")
    if isinstance(error, app_commands.CheckFailure):
        return _("You cannot use this command here.")
    return None


class SeedanceTree(app_commands.CommandTree[discord.Client]):
    """Turns domain errors into ephemeral replies and logs everything else, and knows which
    members are still waiting for an answer."""

    def __init__(self, client: discord.Client, **options: Any) -> None:
        super().__init__(client, **options)
        self._answering: set[asyncio.Task[Any]] = set()

    def answering(self) -> None:
        """The task running now answers a member (a command, a button): until it ends, a
        graceful stop waits for it (see `answered`)."""
        task = asyncio.current_task()
        if task is not None and task not in self._answering:
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)

    async def answered(self, grace: float) -> int:
        """Wait up to ``grace`` seconds until every member being answered has their answer;
        how many were still waiting."""
        waiting = self._answering - {asyncio.current_task()}
        if not waiting:
            return 0
        _, pending = await asyncio.wait(waiting, timeout=grace)
        return len(pending)

    async def interaction_check(self, interaction: discord.Interaction[discord.Client], /) -> bool:
        # Runs in the task that runs the command and answers its errors (on_error).
        self.answering()
        return True

    async def on_error(
        self, interaction: discord.Interaction[discord.Client], error: app_commands.AppCommandError
    ) -> None:
        message = error_message(error)
        if message is None:
            command = interaction.command.qualified_name if interaction.command else "?"
            log.error("command %s failed", command, exc_info=error)
            message = UNEXPECTED
        await reply_ephemeral(interaction, message)


def answering(interaction: discord.Interaction[Any]) -> None:
    """The task running now answers ``interaction`` (a button, a form): a graceful stop lets it
    finish first (see `SeedanceTree.answering`; the tree marks commands itself)."""
    tree = getattr(interaction.client, "tree", None)
    if isinstance(tree, SeedanceTree):
        tree.answering()


async def reply_ephemeral(
    interaction: discord.Interaction[discord.Client],
    message: str | Text,
    embed: discord.Embed | None = None,
) -> None:
    """Answer privately, whether or not the interaction was already acknowledged; a Text is
    worded in the member's language (a str is sent as it is)."""
    if isinstance(message, Text):
        message = private_words(interaction)(message)
    kwargs: dict[str, Any] = {"ephemeral": True, "allowed_mentions": discord.AllowedMentions.none()}
    if embed is not None:
        kwargs["embed"] = embed
    # Discord refuses content over 2,000 characters: never let a long value lose the answer.
    message = message if len(message) <= 2000 else message[:1999] + "…"
    try:
        if interaction.response.is_done():
            await interaction.followup.send(message, **kwargs)
        else:
            await interaction.response.send_message(message, **kwargs)
    except discord.HTTPException:
        log.warning("could not tell member %s about an error", interaction.user.id)
