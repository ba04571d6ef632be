"""The Discord client and `main()`'s resources: one place that owns and hands in everything."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import signal
from typing import Any

import aiohttp
import discord
from discord.ext import commands

from bot.config import Config, Secrets
from bot.endpoints import configure_discord_endpoints
from bot.jobs.breaker import CircuitBreaker
from bot.jobs.runner import JobService
from bot.runcomfy.client import RunComfyClient
from bot.store import Store
from cogs._tree import SeedanceTree

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.animate", "cogs.usage", "cogs.history", "cogs.modlog", "cogs.admin")
SYNC_HASH_KEY = "command_sync_hash"


class SeedanceBot(commands.Bot):
    """A slash-command-only bot; every dependency is handed in by `run_bot`."""

    def __init__(
        self,
        config: Config,
        *,
        http_session: aiohttp.ClientSession,
        store: Store,
        runcomfy_token: str,
        guild_ready_timeout: float = 2.0,
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=SeedanceTree,
            allowed_mentions=discord.AllowedMentions.none(),
            guild_ready_timeout=guild_ready_timeout,
        )
        self.config = config
        self.store = store
        self.http_session = http_session
        # Video re-encodes, one at a time: each takes a core and ~180 MiB at 1080p.
        self.reencodes = asyncio.Semaphore(1)
        self.breaker = CircuitBreaker(
            threshold=config.runcomfy.breaker_failures,
            cooldown=config.runcomfy.breaker_cooldown,
            # Cogs hear it as `on_provider_trouble`: moderators are told once per outage.
            on_trip=lambda trip: self.dispatch("provider_trouble", trip),
        )
        provider = RunComfyClient(
            http_session,
            token=runcomfy_token,
            base_url=config.runcomfy.base_url,
            connect_timeout=config.runcomfy.connect_timeout,
            read_timeout=config.runcomfy.read_timeout,
            on_outcome=self.breaker.observe,
        )
        self.jobs = JobService(
            config=config,
            store=store,
            provider=provider,
            http=http_session,
            breaker=self.breaker,
        )

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.sync_commands()

    async def sync_commands(self) -> bool:
        """Register the commands where configured, unless they are unchanged since last time."""
        guild = (
            discord.Object(self.config.discord.dev_guild_id)
            if self.config.discord.dev_guild_id
            else None
        )
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        payload: list[dict[str, Any]] = [
            command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)
        ]
        scope = f"guild:{guild.id}" if guild else "global"
        digest = hashlib.sha256(json.dumps([scope, payload], sort_keys=True).encode()).hexdigest()
        if await self.store.get_meta(SYNC_HASH_KEY) == digest:
            log.info("commands unchanged since the last sync (%s); not syncing", scope)
            return False
        synced = await self.tree.sync(guild=guild)
        await self.store.set_meta(SYNC_HASH_KEY, digest)
        log.info("synced %d commands (%s)", len(synced), scope)
        return True

    async def on_ready(self) -> None:
        assert self.user is not None
        log.info("logged in as %s (%d) in %d servers", self.user, self.user.id, len(self.guilds))

    async def close(self) -> None:
        await self.jobs.close()
        await super().close()


async def run_bot(config: Config, secrets: Secrets) -> None:
    """Own every resource for the bot's lifetime; stop cleanly on SIGINT/SIGTERM."""
    assert secrets.discord_token and secrets.runcomfy_token
    configure_discord_endpoints(config.discord.api_base_url, config.discord.gateway_url)
    async with (
        aiohttp.ClientSession() as http_session,
        Store.open(config.database.path) as store,
        SeedanceBot(
            config, http_session=http_session, store=store, runcomfy_token=secrets.runcomfy_token
        ) as bot,
    ):
        loop = asyncio.get_running_loop()
        handled = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
                handled.append(sig)
        try:
            await bot.start(secrets.discord_token)
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            # discord.py keeps its endpoints in class attributes: leave them as we found them.
            configure_discord_endpoints(None, None)
