"""The end-to-end world: the real bot, started its real way, in a sandbox; what a member does
and sees there, and what Discord itself would have noticed."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from bot.app import run_bot
from bot.config import Config, DatabaseConfig
from sandbox.world import Sandbox, SandboxSettings
from tests.harness.images import make_image

FAST = SandboxSettings(
    port=0,
    queue_seconds=0.5,
    run_seconds=0.5,
    video_size=(96, 64),
    fps=8,
    status_edit_interval=0.2,
    poll_interval=0.1,
)
"""Sandbox timings for tests: a job takes about a second from /animate to the video."""

WAIT = 15.0
"""Ceiling on any single wait; a passing test never gets near it."""

JSON = dict[str, Any]


def embed_titles(message: JSON) -> str:
    """The titles of a message's embeds, joined (the status message shows its state there)."""
    return " ".join(str(e.get("title") or "") for e in message.get("embeds", []))


def custom_ids(message: JSON) -> list[str]:
    """The custom ids of every button on a message."""
    found: list[str] = []
    for row in message.get("components", []):
        for item in row.get("components", []):
            if item.get("custom_id"):
                found.append(str(item["custom_id"]))
    return found


def is_video(message: JSON) -> bool:
    """Whether a message carries an mp4 attachment."""
    return any(a["filename"].endswith(".mp4") for a in message.get("attachments", []))


class E2E:
    """A running sandbox with the real bot, plus what a member does and sees in it."""

    def __init__(self, sandbox: Sandbox, database: DatabaseConfig | None = None) -> None:
        self.sandbox = sandbox
        self.emu = sandbox.discord
        self.runcomfy = sandbox.runcomfy
        self.database = database
        """The bot's store, when not the sandbox's own SQLite file (PostgreSQL)."""
        self._task: asyncio.Task[None] | None = None

    @property
    def config(self) -> Config:
        """The config the bot runs with: the sandbox's, on the test's database."""
        config = self.sandbox.config
        if self.database is None:
            return config
        return dataclasses.replace(config, database=self.database)

    # the bot -----------------------------------------------------------------------------

    async def start_bot(self, config: Config | None = None) -> None:
        """Run the bot the way `seedance-bot sandbox` does (with ``config`` when given, else the
        sandbox's), and wait until it is on the gateway."""
        assert self._task is None, "the bot is already running"
        # A restarted bot identifies anew: wait for that connection, not the previous one.
        self.emu.gateway.connected.clear()
        self._task = asyncio.create_task(run_bot(config or self.config, self.sandbox.secrets))
        connected = asyncio.create_task(self.emu.wait_for_bot(timeout=WAIT))
        done, _ = await asyncio.wait({self._task, connected}, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            connected.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await connected
            task, self._task = self._task, None
            raise AssertionError(f"the bot stopped while starting: {task.exception()!r}")
        await connected

    async def stop_bot(self) -> None:
        """Stop the bot as a signal would: cancel run_bot and let it close everything."""
        task, self._task = self._task, None
        if task is None:
            return
        if task.done():
            # The bot stopped by itself: that is a failure of whatever test was running.
            raise AssertionError(f"the bot stopped on its own: {task.exception()!r}")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    # what members do ---------------------------------------------------------------------

    async def animate(
        self,
        prompt: str = "a lighthouse in a storm",
        *,
        image: bytes | None = None,
        user_id: int | None = None,
        **options: Any,
    ) -> Any:
        """Upload an image and run /animate; returns the interaction handle once answered."""
        data = make_image(640, 480) if image is None else image
        attachment = await self.emu.upload_attachment("frame.png", data, "image/png")
        handle = await self.emu.invoke_command(
            "animate",
            {"image": attachment, "prompt": prompt, **options},
            user_id=user_id or self.emu.requester_id,
        )
        await handle.wait_response(WAIT)
        return handle

    async def animate_posted(self, channel_id: int, prompt: str) -> tuple[JSON, Any]:
        """A member posts an image in ``channel_id`` and runs the Animate menu on it with
        ``prompt``: the message posted, and the handle of the video form's answer."""
        posted = await self.emu.send_user_message(
            "here", channel_id=channel_id, files=[("frame.png", make_image(640, 480), "image/png")]
        )
        opened = await self.emu.invoke_message_command("Animate", int(posted["id"]))
        await opened.wait_response(WAIT)
        submitted = await self.emu.submit_modal(opened, {"video:prompt": prompt})
        return posted, submitted

    async def reply_text(self, handle: Any) -> str:
        """The text of an interaction's answer once the bot has filled it in."""
        content: str = await handle.wait_until(
            lambda h: (h.original() or {}).get("flags", 0) & 128 == 0 and h.content, WAIT
        )
        return content

    async def usage_fields(self, user_id: int | None = None) -> dict[str, str]:
        """Run /usage as a member and read its embed's fields by name."""
        handle = await self.emu.invoke_command("usage", {}, user_id=user_id)
        await handle.wait_until(lambda h: h.embeds, WAIT)
        return {f["name"]: f["value"] for f in handle.embeds[0]["fields"]}

    async def wait_download_held(self) -> None:
        """Until one of the bot's downloads from Discord's CDN waits there (the test cleared
        the emulator's ``store.downloads_open``: a slow CDN)."""
        cdn = self.emu.store
        async with asyncio.timeout(WAIT):
            while cdn.downloads_waiting == 0:  # noqa: ASYNC110 - watching the CDN
                await asyncio.sleep(0.02)

    # what members see --------------------------------------------------------------------

    def status_messages(self) -> list[JSON]:
        """The bot's status messages in the channel (one per job)."""
        return [
            m
            for m in self.emu.channel_messages()
            if str(m.get("content") or "").startswith("Video for")
        ]

    def videos(self) -> list[JSON]:
        """Messages in the channel carrying a video file."""
        return [m for m in self.emu.channel_messages() if is_video(m)]

    async def wait_status(self, predicate: Any = None) -> JSON:
        """The (newest) status message once ``predicate(message)`` holds for it."""
        check = predicate or (lambda _m: True)
        return await self.emu.wait_for_message(
            lambda m: str(m.get("content") or "").startswith("Video for") and bool(check(m)),
            WAIT,
            channel_id=self.emu.channel_id,
        )

    async def wait_queued(self) -> tuple[JSON, str]:
        """The status message once the job waits in the provider's queue, and its Cancel id."""
        message = await self.wait_status(
            lambda m: (
                "Waiting in the queue" in embed_titles(m)
                and any(c.startswith("job:cancel:") for c in custom_ids(m))
            )
        )
        [cancel] = [c for c in custom_ids(message) if c.startswith("job:cancel:")]
        return message, cancel

    async def wait_video(self) -> JSON:
        """The first message in the channel with a video file."""
        return await self.emu.wait_for_message(is_video, WAIT, channel_id=self.emu.channel_id)

    # after each test ---------------------------------------------------------------------

    def check_discord_saw_nothing_wrong(self) -> None:
        emu = self.emu
        assert emu.unknown_routes == [], "the bot called routes the emulator does not know"
        assert emu.crashes == [], "the emulator failed on a request"
        unanswered = [r.name or r.custom_id for r in emu.service.interactions.values() if r.failed]
        assert unanswered == [], "interactions the bot never acknowledged"
        refused = [
            (r.name or r.custom_id, call)
            for r in emu.service.interactions.values()
            for call in r.rejected
        ]
        assert refused == [], "calls Discord would have refused"


@contextlib.asynccontextmanager
async def running_sandbox(
    settings: SandboxSettings, database: DatabaseConfig | None = None
) -> AsyncIterator[E2E]:
    """A sandbox with the real bot running in it (on ``database`` when given, else the
    sandbox's SQLite file); checks Discord's view on the way out."""
    async with Sandbox(settings) as sandbox:
        world = E2E(sandbox, database)
        try:
            await world.start_bot()
            yield world
            await world.stop_bot()
        finally:
            with contextlib.suppress(AssertionError):
                await world.stop_bot()
        world.check_discord_saw_nothing_wrong()
