"""A small discord.py bot of the tests' own, to drive the Discord emulator with the real client."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from typing import Any, Literal

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands
from PIL import Image

from bot.endpoints import configure_discord_endpoints
from sandbox.discord import DiscordEmulator


def png_bytes(width: int = 400, height: int = 320) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(buffer, "PNG")
    return buffer.getvalue()


# the bot under test ------------------------------------------------------------------------


class CancelButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"job:cancel:(?P<id>\d+)",
):
    """A persistent Cancel button, as the real bot registers it."""

    def __init__(self, job_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Cancel", style=discord.ButtonStyle.danger, custom_id=f"job:cancel:{job_id}"
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Button[discord.ui.View],
        match: Any,
    ) -> CancelButton:
        return cls(int(match["id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = interaction.client
        assert isinstance(bot, EmulatedBot)
        bot.cancelled.append((self.job_id, interaction.user.id))
        await interaction.response.edit_message(
            content=f"Job {self.job_id} cancelled by {interaction.user.display_name}", view=None
        )


@app_commands.command(name="animate", description="Turn an image into a video")
async def animate(
    interaction: discord.Interaction,
    image: discord.Attachment,
    prompt: str,
    resolution: Literal["480p", "720p", "1080p"] = "480p",
    duration: Literal[5, 10] = 5,
) -> None:
    bot = interaction.client
    assert isinstance(bot, EmulatedBot)
    await interaction.response.defer(thinking=True)
    data = await image.read()
    channel = interaction.channel
    assert isinstance(channel, discord.TextChannel)
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(7))
    embed = discord.Embed(title="Job 7", description=prompt, colour=0x5865F2)
    embed.add_field(name="Settings", value=f"{resolution}, {duration}s")
    embed.set_thumbnail(url="attachment://first.png")
    status = await channel.send(
        f"{interaction.user.mention} @everyone your job is queued",
        embed=embed,
        file=discord.File(io.BytesIO(data), "first.png"),
        view=view,
        allowed_mentions=discord.AllowedMentions(everyone=False, users=[interaction.user]),
    )
    bot.status_messages.append(status)
    await interaction.followup.send(f"Queued: {len(data)} bytes, {resolution}, {duration}s")
    embed.description = f"{prompt} (running)"
    await status.edit(embed=embed)
    await channel.send(
        f"{interaction.user.mention} here is your video",
        file=discord.File(io.BytesIO(b"\x00\x00\x00\x18ftypmp42" + b"v" * 2000), "video.mp4"),
        allowed_mentions=discord.AllowedMentions(everyone=False, users=[interaction.user]),
    )


@app_commands.command(name="slow", description="Answers after a pause")
async def slow(interaction: discord.Interaction) -> None:
    bot = interaction.client
    assert isinstance(bot, EmulatedBot)
    await asyncio.sleep(bot.slow_delay)
    try:
        await interaction.response.send_message("finally")
    except discord.HTTPException as exc:
        bot.errors.append(exc)


@app_commands.command(name="later", description="Defers, then follows up when told")
async def later(interaction: discord.Interaction) -> None:
    bot = interaction.client
    assert isinstance(bot, EmulatedBot)
    await interaction.response.defer()
    await bot.proceed.wait()
    try:
        await interaction.followup.send("late news")
    except discord.HTTPException as exc:
        bot.errors.append(exc)


@app_commands.command(name="usage", description="Your credits")
async def usage(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("You have 3 credits left", ephemeral=True)


@app_commands.command(name="announce", description="Posts a text twice")
async def announce(interaction: discord.Interaction, text: str) -> None:
    channel = interaction.channel
    assert isinstance(channel, discord.TextChannel)
    await channel.send(
        f"guarded: {text}",
        allowed_mentions=discord.AllowedMentions(everyone=False, users=[interaction.user]),
    )
    await channel.send(f"unguarded: {text}")
    await interaction.response.send_message("posted", ephemeral=True)


@app_commands.command(name="budget", description="Moderators only")
@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
async def budget(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("budget: 100 credits", ephemeral=True)


class DescribeModal(discord.ui.Modal, title="Describe your video"):
    """A text input in a row (the older form) and a select inside a Label (discord.py 2.6+)."""

    prompt: discord.ui.TextInput[DescribeModal] = discord.ui.TextInput(
        label="Prompt", style=discord.TextStyle.paragraph, min_length=3, max_length=500
    )
    look: discord.ui.Label[DescribeModal] = discord.ui.Label(
        text="Style",
        component=discord.ui.Select(
            custom_id="describe:style",
            options=[
                discord.SelectOption(label="Anime", value="anime"),
                discord.SelectOption(label="Photo", value="photo"),
            ],
        ),
    )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        select = self.look.component
        assert isinstance(select, discord.ui.Select)
        await interaction.response.send_message(
            f"prompt={self.prompt.value} style={','.join(select.values)}"
        )


@app_commands.command(name="describe", description="Opens a form")
async def describe(interaction: discord.Interaction) -> None:
    await interaction.response.send_modal(DescribeModal())


async def animate_this(interaction: discord.Interaction, message: discord.Message) -> None:
    names = ", ".join(a.filename for a in message.attachments)
    await interaction.response.send_message(
        f"{message.author.id} wrote {message.content!r} with [{names}]", ephemeral=True
    )


animate_this_menu = app_commands.ContextMenu(name="Animate this", callback=animate_this)


class EmulatedBot(commands.Bot):
    def __init__(self, guild_id: int) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            guild_ready_timeout=0.05,
            help_command=None,
        )
        self.guild = discord.Object(guild_id)
        self.ready_event = asyncio.Event()
        self.proceed = asyncio.Event()
        self.slow_delay = 0.0
        self.errors: list[discord.HTTPException] = []
        self.cancelled: list[tuple[int, int]] = []
        self.status_messages: list[discord.Message] = []

    async def setup_hook(self) -> None:
        self.add_dynamic_items(CancelButton)
        for command in (animate, slow, later, usage, announce, budget, describe, animate_this_menu):
            self.tree.add_command(command, guild=self.guild)
        await self.tree.sync(guild=self.guild)

    async def on_ready(self) -> None:
        self.ready_event.set()


@contextlib.asynccontextmanager
async def running_bot(emu: DiscordEmulator) -> AsyncIterator[EmulatedBot]:
    configure_discord_endpoints(emu.api_base, emu.gateway_url)
    bot = EmulatedBot(emu.guild_id)
    runner = asyncio.create_task(bot.start(emu.bot_token))
    ready = asyncio.create_task(bot.ready_event.wait())
    try:
        done, _ = await asyncio.wait(
            {runner, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED
        )
        if runner in done:
            runner.result()
        assert ready in done, "the bot did not become ready"
        yield bot
    finally:
        ready.cancel()
        await bot.close()
        await asyncio.wait_for(runner, 5)


async def fetch(url: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.read()
