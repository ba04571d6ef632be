"""Autospecced Discord objects for driving the cogs without a gateway.

Every object is a `create_autospec` of the real discord.py class, so a call the real object
would not accept fails the test. What a member would see is recorded on plain lists.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from unittest.mock import create_autospec

import discord
from discord import app_commands

_ids = itertools.count(1)


def snowflake() -> int:
    """A new id made as Discord makes them: the time now, then a counter."""
    return discord.utils.time_snowflake(discord.utils.utcnow()) + next(_ids) % (1 << 22)


@dataclass
class Sent:
    """One message the bot posted or edited in a channel."""

    id: int
    content: str | None
    embed: discord.Embed | None
    view: discord.ui.View | None
    file: discord.File | None
    allowed_mentions: discord.AllowedMentions | None
    edits: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False

    def current_embed(self) -> discord.Embed | None:
        for edit in reversed(self.edits):
            if "embed" in edit:
                embed: discord.Embed | None = edit["embed"]
                return embed
        return self.embed

    def current_view(self) -> discord.ui.View | None:
        for edit in reversed(self.edits):
            if "view" in edit:
                view: discord.ui.View | None = edit["view"]
                return view
        return self.view


class FakeChannel:
    """A channel's messages, reachable the way the bot reaches them (`get_partial_messageable`)."""

    def __init__(self, channel_id: int, guild_id: int) -> None:
        self.id = channel_id
        self.guild_id = guild_id
        self.messages: list[Sent] = []
        self.file_bytes: dict[int, bytes] = {}
        self.attachments: dict[int, list[discord.Attachment]] = {}
        # Where the channel's attachments are served from: (filename, bytes) -> URL.
        self.publish: Callable[[str, bytes], str] = lambda name, _data: (
            f"https://cdn.example/attachments/{self.id}/{name}"
        )
        self.upload_limit: int | None = None
        self.forbidden = False
        # An error every send raises, as a dropped connection or a timeout would.
        self.fail_sends_with: BaseException | None = None

    def by_id(self, message_id: int) -> Sent:
        return next(m for m in self.messages if m.id == message_id)

    def partial(self) -> discord.PartialMessageable:
        channel = create_autospec(discord.PartialMessageable, instance=True)
        channel.id = self.id
        channel.send.side_effect = self._send
        channel.get_partial_message.side_effect = self._partial_message
        channel.fetch_message.side_effect = self._fetch
        channel.history.side_effect = self._history
        return channel

    async def _history(
        self, *, limit: int | None = 100, after: discord.abc.Snowflake | None = None
    ) -> AsyncIterator[Any]:
        """The channel's messages after ``after``, oldest first, with their components."""
        shown = [m for m in self.messages if not m.deleted and (after is None or m.id > after.id)]
        for sent in shown[:limit]:
            view = sent.current_view()
            rows = [SimpleNamespace(children=list(view.children))] if view else []
            yield SimpleNamespace(id=sent.id, components=rows)

    async def _send(self, content: str | None = None, **kwargs: Any) -> discord.Message:
        if self.forbidden:
            raise _http_error(discord.Forbidden, 403, 50013, "Missing Permissions")
        if self.fail_sends_with is not None:
            raise self.fail_sends_with
        file: discord.File | None = kwargs.get("file")
        files: list[discord.File] = [f for f in kwargs.get("files") or [] if f]
        data = None
        if file is not None:
            data = file.fp.read()
            if self.upload_limit is not None and len(data) > self.upload_limit:
                raise _http_error(discord.HTTPException, 413, 40005, "Request entity too large")
        attachments = []
        for extra in files:
            attachment = create_autospec(discord.Attachment, instance=True)
            attachment.filename = extra.filename
            payload = extra.fp.read()
            attachment.url = self.publish(extra.filename, payload)
            attachment.read.return_value = payload
            # What Discord reports of every attachment it stores.
            attachment.size = len(payload)
            attachment.content_type = None
            attachments.append(attachment)
        sent = Sent(
            id=snowflake(),
            content=content,
            embed=kwargs.get("embed"),
            view=kwargs.get("view"),
            file=file,
            allowed_mentions=kwargs.get("allowed_mentions"),
        )
        self.messages.append(sent)
        if data is not None:
            self.file_bytes[sent.id] = data
        message = create_autospec(discord.Message, instance=True)
        message.id = sent.id
        message.attachments = attachments
        self.attachments[sent.id] = attachments
        message.jump_url = f"https://discord.com/channels/{self.guild_id}/{self.id}/{sent.id}"
        return message

    async def _fetch(self, message_id: int) -> discord.Message:
        found = [m for m in self.messages if m.id == message_id and not m.deleted]
        if not found:
            raise _http_error(discord.NotFound, 404, 10008, "Unknown Message")
        message = create_autospec(discord.Message, instance=True)
        message.id = message_id
        message.attachments = self.attachments.get(message_id, [])
        return message

    def message_object(self, message_id: int) -> discord.Message:
        """The message as a button interaction carries it (`interaction.message`)."""
        message = create_autospec(discord.Message, instance=True)
        message.id = message_id

        async def delete(**_: Any) -> None:
            self.by_id(message_id).deleted = True

        message.delete.side_effect = delete
        return message

    def _partial_message(self, message_id: int) -> discord.PartialMessage:
        message = create_autospec(discord.PartialMessage, instance=True)
        message.id = message_id
        message.jump_url = f"https://discord.com/channels/{self.guild_id}/{self.id}/{message_id}"

        async def edit(**kwargs: Any) -> None:
            found = [m for m in self.messages if m.id == message_id and not m.deleted]
            if not found:
                raise _http_error(discord.NotFound, 404, 10008, "Unknown Message")
            found[0].edits.append(kwargs)

        message.edit.side_effect = edit
        return message


class _Response:
    def __init__(self, status: int) -> None:
        self.status = status
        self.reason = "error"


def _http_error(kind: type[discord.HTTPException], status: int, code: int, text: str) -> Exception:
    return kind(_Response(status), {"code": code, "message": text})  # type: ignore[arg-type]


def make_attachment(url: str, data: bytes, *, filename: str = "frame.png") -> discord.Attachment:
    attachment = create_autospec(discord.Attachment, instance=True)
    attachment.url = url
    attachment.filename = filename
    attachment.size = len(data)
    attachment.content_type = "image/png"
    attachment.read.return_value = data
    return attachment


class Member:
    """Who acts: their id and whether they hold Manage Server."""

    def __init__(self, name: str, *, moderator: bool = False) -> None:
        self.id = snowflake()
        self.name = name
        self.moderator = moderator


def make_interaction(
    client: discord.Client,
    member: Member,
    channel: FakeChannel,
    *,
    app_permissions: discord.Permissions | None = None,
    filesize_limit: int = 10 * 1024 * 1024,
    in_guild: bool = True,
) -> discord.Interaction[Any]:
    interaction = create_autospec(discord.Interaction, instance=True)
    interaction.client = client
    interaction.id = snowflake()
    interaction.guild_id = channel.guild_id if in_guild else None
    interaction.channel_id = channel.id
    user = create_autospec(discord.Member, instance=True)
    user.id = member.id
    user.display_name = member.name
    interaction.user = user
    interaction.permissions = discord.Permissions(manage_guild=member.moderator)
    interaction.app_permissions = app_permissions or discord.Permissions.all()
    interaction.filesize_limit = filesize_limit
    interaction.command = None
    interaction.message = None
    response = create_autospec(discord.InteractionResponse, instance=True)
    response.is_done.side_effect = lambda: bool(
        response.defer.await_count or response.send_message.await_count
    )
    interaction.response = response
    interaction.followup = create_autospec(discord.Webhook, instance=True)
    return interaction


def member_saw(interaction: discord.Interaction[Any]) -> list[str]:
    """Every private text the member was shown for this interaction, in order."""
    texts: list[str] = []
    response: Any = interaction.response
    for call in response.send_message.await_args_list:
        texts.append(call.args[0] if call.args else call.kwargs.get("content", ""))
    edit: Any = interaction.edit_original_response
    for call in edit.await_args_list:
        texts.append(call.kwargs.get("content", ""))
    followup: Any = interaction.followup
    for call in followup.send.await_args_list:
        texts.append(call.args[0] if call.args else call.kwargs.get("content", ""))
    return texts


async def invoke(
    tree: app_commands.CommandTree[Any],
    interaction: discord.Interaction[Any],
    name: str,
    **options: Any,
) -> None:
    """Run a slash command as the tree would: its checks, then its callback; errors through
    the tree's funnel.

    ``name`` is the command's qualified name: ``"animate"``, or ``"admin blocklist add"`` for
    a subcommand. Options are the callback's parameters, already converted.
    """
    first, *rest = name.split()
    command: Any = tree.get_command(first)
    for part in rest:
        assert isinstance(command, app_commands.Group), f"{command!r} has no subcommand {part}"
        command = command.get_command(part)
    assert isinstance(command, app_commands.Command), f"no command {name!r}"
    interaction.command = command
    try:
        # The same checks discord.py runs before a callback: the tree's, the cog's
        # interaction_check (and its groups'), the command's own. Discord itself only
        # applies default permissions, which a server may change; these run anyway.
        if not await tree.interaction_check(interaction):
            return
        if not await command._check_can_run(interaction):
            raise app_commands.CheckFailure(f"The check functions for {name!r} failed.")
        await command.callback(command.binding, interaction, **options)
    except app_commands.AppCommandError as exc:
        await tree.on_error(interaction, exc)
    except Exception as exc:
        await tree.on_error(interaction, app_commands.CommandInvokeError(command, exc))


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 15.0) -> None:
    """Wait until `check()` holds: the bot works in the background, as it does for members."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 - polling what a member would look at
            await asyncio.sleep(0.02)


async def answered(interaction: discord.Interaction[Any]) -> list[str]:
    """What the member was shown, once the bot has answered (buttons answer in the background)."""

    async def shown() -> bool:
        return bool(member_saw(interaction))

    await eventually(shown)
    return member_saw(interaction)


def opened_modal(interaction: discord.Interaction[Any]) -> discord.ui.Modal:
    """The form the bot opened as its answer to ``interaction``."""
    response: Any = interaction.response
    modal = response.send_modal.await_args.args[0]
    assert isinstance(modal, discord.ui.Modal)
    return modal


async def submit_modal(
    modal: discord.ui.Modal, submitter: discord.Interaction[Any], values: dict[str, str]
) -> None:
    """Fill in a form's text inputs by custom id and submit it, as discord.py would."""
    for item in modal.walk_children():
        if isinstance(item, discord.ui.TextInput) and item.custom_id in values:
            item._value = values[item.custom_id]
    await modal.on_submit(submitter)
