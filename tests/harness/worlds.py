"""A world for driving the cogs: the real engine over HTTP and a real store (SQLite, or
PostgreSQL under ``@pytest.mark.store_backends(...)``), Discord as autospecs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import discord
import pytest

from bot.app import EXTENSIONS, SeedanceBot
from bot.config import (
    AnimateConfig,
    Config,
    DiscordConfig,
    JobsConfig,
    QuotaConfig,
    RunComfyConfig,
)
from bot.models import JobRecord, JobState
from bot.store import Store
from sandbox.runcomfy import RunComfyEmulator
from tests.harness.backends import Backend
from tests.harness.discord_fakes import (
    FakeChannel,
    Member,
    eventually,
    invoke,
    make_attachment,
    make_interaction,
    snowflake,
)
from tests.harness.images import make_image
from tests.harness.settings import overrides

TOKEN = "rc-secret-token-123"


@dataclass
class World:
    bot: SeedanceBot
    rc: RunComfyEmulator
    store: Store
    channel: FakeChannel
    alice: Member
    bob: Member
    mod: Member
    image_url: str
    modlog: FakeChannel = field(default_factory=lambda: FakeChannel(snowflake(), snowflake()))

    def interaction(self, member: Member, **kwargs: Any) -> discord.Interaction[Any]:
        return make_interaction(self.bot, member, self.channel, **kwargs)

    def image(self, data: bytes | None = None) -> discord.Attachment:
        if data is None:
            return make_attachment(self.image_url, make_image(640, 480))
        return make_attachment(self.image_url, data)

    async def animate(self, member: Member, **options: Any) -> discord.Interaction[Any]:
        interaction = self.interaction(member)
        options.setdefault("image", self.image())
        options.setdefault("prompt", "a cat walks across the frame")
        await invoke(self.bot.tree, interaction, "animate", **options)
        return interaction

    async def only_job(self) -> JobRecord:
        jobs = await self.store.recent_jobs(self.channel.guild_id, self.alice.id, limit=5)
        assert len(jobs) == 1
        return jobs[0]

    def edits_shown(self) -> bool:
        """Every status edit and post the bot queued has been made."""
        cog: Any = self.bot.get_cog("AnimateCog")
        return all(pacer.idle for pacer in cog.launcher._pacers.values())

    async def wait_for(self, job_id: int, *states: JobState) -> JobRecord:
        found: list[JobRecord] = []

        async def reached() -> bool:
            job = await self.store.get_job(job_id)
            assert job is not None
            found[:] = [job]
            # A finished job is settled once its runner is done and its channel's edits shown.
            return job.state in states and (
                not job.state.is_terminal
                or (self.bot.runner.active_jobs == 0 and self.edits_shown())
            )

        await eventually(reached)
        return found[0]


def config_for(
    rc: RunComfyEmulator,
    *,
    quota: QuotaConfig | None = None,
    max_concurrent_jobs: int = 20,
    job_deadline: float = 20.0,
    cooldown_seconds: float = 0.0,
) -> Config:
    """The cog world's config: ``@pytest.mark.settings(quota=..., max_concurrent_jobs=...,
    job_deadline=..., cooldown_seconds=...)``; no /animate cooldown unless a test asks."""
    return Config(
        discord=DiscordConfig(status_edit_interval=0.0),
        runcomfy=RunComfyConfig(
            base_url=rc.base_url,
            poll_interval=0.05,
            job_deadline=job_deadline,
            read_timeout=2.0,
            breaker_cooldown=0.0,
            max_concurrent_jobs=max_concurrent_jobs,
        ),
        quota=quota or QuotaConfig(),
        animate=AnimateConfig(cooldown_seconds=cooldown_seconds),
        # Short leases, so a job handed back after an error is taken again within the test.
        jobs=JobsConfig(lease_seconds=1.0, shutdown_grace=1.0),
    )


@pytest.fixture
async def world(backend: Backend, request: pytest.FixtureRequest) -> AsyncIterator[World]:
    async with (
        RunComfyEmulator(
            token=TOKEN, queue_seconds=0.3, run_seconds=0.3, video_size=(64, 48), fps=8
        ) as rc,
        aiohttp.ClientSession() as http,
        backend.open() as store,
    ):
        image_url = rc.add_asset("first.png", make_image(640, 480))
        bot = SeedanceBot(
            config_for(rc, **overrides(request)),
            http_session=http,
            store=store,
            runcomfy_token=TOKEN,
        )
        channel = FakeChannel(snowflake(), snowflake())
        channel.publish = lambda name, data: rc.add_asset(f"{snowflake()}-{name}", data)
        modlog = FakeChannel(snowflake(), channel.guild_id)
        channels = {channel.id: channel, modlog.id: modlog}
        bot.get_partial_messageable = lambda channel_id, **_: channels[channel_id].partial()  # type: ignore[method-assign]
        # Entering the client gives it its event loop, as `run_bot` does; it never logs in here.
        async with bot:
            for extension in EXTENSIONS:
                await bot.load_extension(extension)
            # What setup_hook does after loading the cogs: resume, then keep sweeping.
            assert bot.notifier_for is not None
            await bot.runner.resume(bot.notifier_for)
            try:
                yield World(
                    bot=bot,
                    rc=rc,
                    store=store,
                    channel=channel,
                    alice=Member("alice"),
                    bob=Member("bob"),
                    mod=Member("mod", moderator=True),
                    image_url=image_url,
                    modlog=modlog,
                )
            finally:
                await bot.runner.close()
                for extension in EXTENSIONS:
                    await bot.unload_extension(extension)
