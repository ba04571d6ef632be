"""A second, independent client (hikari, unmodified) against the emulator.

hikari is pointed at the emulator only through its public constructor (``rest_url``); it
finds the gateway the way it finds Discord's, from ``GET /gateway/bot``. If it parses
something discord.py tolerates, the emulator is shaped wrong, not hikari.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import hikari
import pytest

from sandbox.discord import DiscordEmulator
from tests.harness.emulated_bot import png_bytes

Handler = Callable[[hikari.PartialInteraction], Awaitable[None]]


@asynccontextmanager
async def hikari_bot(emu: DiscordEmulator, handler: Handler) -> AsyncIterator[hikari.GatewayBot]:
    bot = hikari.GatewayBot(
        emu.bot_token,
        rest_url=emu.api_base,
        intents=hikari.Intents.GUILDS | hikari.Intents.GUILD_MESSAGES,
        banner=None,
        suppress_optimization_warning=True,
        logs=None,
    )
    guild_seen = asyncio.Event()
    failures: list[BaseException] = []

    async def on_guild(event: hikari.GuildAvailableEvent) -> None:
        guild_seen.set()

    async def on_interaction(event: hikari.InteractionCreateEvent) -> None:
        try:
            await handler(event.interaction)
        except Exception as exc:
            failures.append(exc)
            raise

    bot.subscribe(hikari.GuildAvailableEvent, on_guild)
    bot.subscribe(hikari.InteractionCreateEvent, on_interaction)
    await bot.start(check_for_updates=False)
    try:
        await asyncio.wait_for(guild_seen.wait(), 10)
        yield bot
        assert failures == []
    finally:
        await bot.close()


async def test_hikari_connects_registers_and_runs_an_interaction_flow() -> None:
    picture = png_bytes(64, 48)
    seen: dict[str, object] = {}

    async def handle(interaction: hikari.PartialInteraction) -> None:
        rest = interaction.app.rest
        if isinstance(interaction, hikari.CommandInteraction):
            await interaction.create_initial_response(hikari.ResponseType.DEFERRED_MESSAGE_CREATE)
            assert interaction.resolved is not None
            attachment = next(iter(interaction.resolved.attachments.values()))
            data = await attachment.read()
            seen["bytes"] = data
            row = rest.build_message_action_row().add_interactive_button(
                hikari.ButtonStyle.PRIMARY, "job:open", label="Describe"
            )
            await interaction.edit_initial_response(f"read {len(data)} bytes", component=row)
            followup = await interaction.execute(
                "here is a copy", attachment=hikari.Bytes(data, "copy.png")
            )
            seen["followup"] = followup
        elif isinstance(interaction, hikari.ComponentInteraction):
            row = rest.build_modal_action_row().add_text_input("prompt", "Prompt", min_length=3)
            await interaction.create_modal_response("Describe it", "job:form", component=row)
        elif isinstance(interaction, hikari.ModalInteraction):
            value = interaction.components[0].components[0].value
            await interaction.create_initial_response(
                hikari.ResponseType.MESSAGE_CREATE, f"prompt: {value}"
            )

    async with DiscordEmulator() as emu, hikari_bot(emu, handle) as bot:
        assert emu.bot_connected
        me = await bot.rest.fetch_my_user()
        assert me.id == emu.bot_user_id
        application = await bot.rest.fetch_application()
        assert application.id == emu.application_id
        guild = await bot.rest.fetch_guild(emu.guild_id)
        assert guild.name == "Seedance Sandbox"

        slash = bot.rest.slash_command_builder("animate", "Turn an image into a video")
        slash.add_option(
            hikari.CommandOption(
                type=hikari.OptionType.ATTACHMENT,
                name="image",
                description="The picture",
                is_required=True,
            )
        )
        menu = bot.rest.context_menu_command_builder(hikari.CommandType.MESSAGE, "Animate this")
        registered = await bot.rest.set_application_commands(
            emu.application_id, [slash, menu], guild=emu.guild_id
        )
        assert sorted(c.name for c in registered) == ["Animate this", "animate"]
        listed = await bot.rest.fetch_application_commands(emu.application_id, emu.guild_id)
        assert len(listed) == 2

        image = await emu.upload_attachment("cat.png", picture, "image/png")
        handle = await emu.invoke_command("animate", {"image": image})
        assert (await handle.wait_response())["type"] == 5
        await handle.wait_until(lambda h: h.followups())
        assert seen["bytes"] == picture
        assert handle.content == f"read {len(picture)} bytes"
        copy = handle.followups()[0]
        assert copy["attachments"][0]["filename"] == "copy.png"
        assert copy["attachments"][0]["size"] == len(picture)
        button = handle.components[0]["components"][0]
        assert button["custom_id"] == "job:open" and button["id"] == 2

        click = await emu.click_button(int(handle.original()["id"]), "job:open")
        assert (await click.wait_response())["type"] == 9
        with pytest.raises(Exception, match="at least 3"):
            await emu.submit_modal(click, {"prompt": "no"})
        submitted = await emu.submit_modal(click, {"prompt": "a cat waves"})
        await submitted.wait_response()
        assert submitted.content == "prompt: a cat waves"
        assert emu.unknown_routes == [] and emu.crashes == []


async def test_hikari_uploads_a_file_to_a_channel_and_reads_it_back() -> None:
    async def ignore(interaction: hikari.PartialInteraction) -> None:
        return None

    async with DiscordEmulator() as emu, hikari_bot(emu, ignore) as bot:
        data = b"\x00\x00\x00\x18ftypmp42" + b"v" * 4000
        sent = await bot.rest.create_message(
            emu.channel_id, "your video", attachment=hikari.Bytes(data, "video.mp4")
        )
        fetched = await bot.rest.fetch_message(emu.channel_id, sent.id)
        assert fetched.content == "your video"
        assert fetched.attachments[0].media_type == "video/mp4"
        assert await fetched.attachments[0].read() == data
        edited = await bot.rest.edit_message(emu.channel_id, sent.id, "your video (done)")
        assert edited.edited_timestamp is not None
        assert emu.unknown_routes == [] and emu.crashes == []
