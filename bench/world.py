"""The emulated world for the end-to-end benchmarks: both emulators here, the bot elsewhere.

`open_world` starts a `Sandbox` (local Discord and RunComfy) in this process, adds channels,
starts the real bot (`bot.app.run_bot`) in a child process pointed at it, and waits until the
bot is connected with its commands registered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from PIL import Image

from bench.botproc import BotProcess
from sandbox.discord import DiscordEmulator, InteractionHandle
from sandbox.discord.snowflake import SnowflakeGenerator
from sandbox.discord.state import TEXT_CHANNEL, Channel
from sandbox.world import Sandbox, SandboxSettings

CHANNEL_MESSAGE_ROUTE = "/channels/{channel_id}/messages/{message_id}"
# A worker id of its own, so channel ids never collide with the emulator's snowflakes.
_CHANNEL_IDS = SnowflakeGenerator(worker_id=29)


def frame_png() -> bytes:
    """A small, valid first frame (640x360 solid colour, a couple of kB)."""
    out = io.BytesIO()
    Image.new("RGB", (640, 360), (30, 110, 170)).save(out, "PNG")
    return out.getvalue()


@dataclass
class World:
    sandbox: Sandbox
    bot: BotProcess
    channels: list[int]
    members: list[int]
    frame: bytes

    @property
    def discord(self) -> DiscordEmulator:
        return self.sandbox.discord

    async def animate(
        self, index: int, prompt: str = "waves rolling onto a beach"
    ) -> InteractionHandle:
        """Member `index % members` runs /animate in channel `index % channels`."""
        emu = self.discord
        channel = self.channels[index % len(self.channels)]
        image = await emu.upload_attachment(
            "frame.png", self.frame, "image/png", channel_id=channel
        )
        return await emu.invoke_command(
            "animate",
            {"image": image, "prompt": prompt},
            user_id=self.members[index % len(self.members)],
            channel_id=channel,
        )

    def ack_seconds(self, handle: InteractionHandle) -> float | None:
        """Interaction created at Discord -> its first callback received; None if never."""
        record = self.discord.service.interactions[handle.id]
        if record.acknowledged_at is None:
            return None
        return record.acknowledged_at - record.created_at

    def videos(self) -> int:
        """Messages carrying a finished video (the bot's delivery posts)."""
        return sum(
            1
            for message in self.discord.service.messages.values()
            if any(a.filename.endswith(".mp4") for a in message.attachments)
        )

    def status_edits(self) -> list[tuple[int, float]]:
        """(channel id, wall time) of every edit of a channel message."""
        found = []
        for record in self.discord.requests:
            if record.method == "PATCH" and record.route == CHANNEL_MESSAGE_ROUTE:
                found.append((int(record.path.split("/")[-3]), record.at))
        return found


async def until(check: Any, *, timeout: float, every: float = 0.05) -> bool:  # noqa: ASYNC109
    """Wait until `check()` holds; False when `timeout` passed first."""
    ends = time.monotonic() + timeout
    while not check():
        if time.monotonic() > ends:
            return False
        await asyncio.sleep(every)
    return True


@asynccontextmanager
async def open_world(
    settings: SandboxSettings,
    *,
    channels: int,
    max_concurrent_jobs: int,
    cooldown_seconds: float = 0.0,
    requests_per_second: int | None = None,
) -> AsyncIterator[World]:
    """A started sandbox with `channels` text channels and the bot connected to it.

    No /animate cooldown unless asked: the benchmarks send one member's requests back to back.
    `requests_per_second` overrides the bot's share of Discord's global limit.
    """
    async with Sandbox(settings) as sandbox:
        emu = sandbox.discord
        world_state = emu.world
        ids = [emu.channel_id, emu.other_channel_id]
        for index in range(max(0, channels - len(ids))):
            channel = Channel(
                _CHANNEL_IDS.next(),
                TEXT_CHANNEL,
                f"bench-{index}",
                emu.guild_id,
                position=index + 2,
            )
            world_state.channels[channel.id] = channel
            ids.append(channel.id)
        config = sandbox.config
        config = dataclasses.replace(
            config,
            runcomfy=dataclasses.replace(config.runcomfy, max_concurrent_jobs=max_concurrent_jobs),
            animate=dataclasses.replace(config.animate, cooldown_seconds=cooldown_seconds),
        )
        if requests_per_second is not None:
            config = dataclasses.replace(
                config,
                discord=dataclasses.replace(
                    config.discord, requests_per_second=requests_per_second
                ),
            )
        bot = BotProcess(config, sandbox.secrets)
        bot.start()
        try:
            await emu.wait_for_bot(timeout=60)
            if not await until(lambda: bool(emu.registered_commands()), timeout=30):
                raise RuntimeError("the bot never registered its commands")
            yield World(
                sandbox=sandbox,
                bot=bot,
                channels=ids[:channels],
                members=[emu.requester_id, emu.member_id],
                frame=frame_png(),
            )
        finally:
            await bot.stop()
