"""The Discord client and `main()`'s resources: one place that owns and hands in everything."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import signal
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import aiohttp
import discord
from discord.ext import commands

from bot.admission import Admission
from bot.config import Config, Secrets
from bot.endpoints import configure_discord_endpoints
from bot.guilds import GuildAdmin
from bot.jobs.breaker import CircuitBreaker, Trip, Trouble
from bot.jobs.notify import JobNotifier
from bot.jobs.runner import JobRunner, utcnow
from bot.models import JobRecord
from bot.ops.discord_budget import RequestBudget, guard
from bot.ops.discord_http import discord_trace
from bot.ops.health import Health
from bot.ops.server import serve_ops
from bot.runcomfy.client import RunComfyClient
from bot.runcomfy.pricing import ListPrice
from bot.store import Store, open_database
from bot.tasks import TaskSet
from cogs._i18n import CatalogTranslator
from cogs._tree import SeedanceTree

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.animate", "cogs.usage", "cogs.history", "cogs.moderation")
SYNC_HASH_KEY = "command_sync_hash"


class SeedanceBot(commands.AutoShardedBot):
    """A slash-command-only bot; every dependency is handed in by `run_bot`.

    Sharded: the process connects the gateway shards ``[discord] shard_ids`` names (all of
    ``shard_count`` by default), or none, when it only runs jobs over REST.
    """

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
        shards: dict[str, Any] = {}
        if config.discord.shard_ids is not None:
            shards["shard_ids"] = list(config.discord.shard_ids)
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=SeedanceTree,
            allowed_mentions=discord.AllowedMentions.none(),
            guild_ready_timeout=guild_ready_timeout,
            # Latency and 429s of every REST call, for the metrics.
            http_trace=discord_trace(),
            shard_count=config.discord.shard_count,
            **shards,
        )
        self.config = config
        self._stopped = asyncio.Event()
        self._store = store
        self._tasks = TaskSet()
        self.http_session = http_session
        self.breaker = CircuitBreaker(
            threshold=config.runcomfy.breaker_failures,
            cooldown=config.runcomfy.breaker_cooldown,
            # Moderators are told once per outage, through the desk.
            on_trip=self._provider_tripped,
            # The other processes on the database follow what this one saw.
            share=self._share_provider_state,
        )
        provider = RunComfyClient(
            http_session,
            token=runcomfy_token,
            base_url=config.runcomfy.base_url,
            connect_timeout=config.runcomfy.connect_timeout,
            read_timeout=config.runcomfy.read_timeout,
            submit_timeout=config.runcomfy.submit_timeout,
            on_outcome=self.breaker.observe,
        )
        defaults = config.quota.guild_defaults()
        # The three doors the cogs use: new requests, moderator changes, running jobs.
        self.runner = JobRunner(config=config, store=store, provider=provider, http=http_session)
        self.admission = Admission(
            store=store,
            probe=provider.probe,
            breaker=self.breaker,
            defaults=defaults,
            costs=config.quota.cost,
            clock=utcnow,
            owner=self.runner.identity,
            lease=timedelta(seconds=config.jobs.lease_seconds),
        )
        self.guild_admin = GuildAdmin(store=store, defaults=defaults, clock=utcnow)
        self.discord_budget = RequestBudget(rate=config.discord.requests_per_second)
        """Discord's global limit on this process's requests: every REST request spends it."""
        assert self.http.http_trace is not None  # given above; frozen only at login
        guard(self.http.http_trace, self.discord_budget)
        self.notifier_for: Callable[[JobRecord], JobNotifier] | None = None
        """Makes the notifier of a job the bot resumes; set by the /animate extension."""
        self._provider = provider
        self.list_price: ListPrice | None = None
        """The model's published price, read once at start when the provider gives one."""

    async def setup_hook(self) -> None:
        await self._store.listen(self._heard)
        # In the background: a slow or silent provider never holds up the start.
        self._tasks.create(self._read_list_price(), name="list-price")
        await self.tree.set_translator(CatalogTranslator())
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.notifier_for is not None:
            await self.runner.resume(self.notifier_for)
        # One process registers the commands (the one holding shard 0), so several
        # processes starting together never sync over each other.
        if self.config.discord.registers_commands:
            await self.sync_commands()

    async def _read_list_price(self) -> None:
        self.list_price = await self._provider.list_price()
        if self.list_price is not None:
            log.info("list price: $%s per %s", self.list_price.base_usd, self.list_price.unit)

    def _provider_tripped(self, trip: Trip) -> None:
        desk = self.runner.desk
        if desk is not None:
            self._tasks.create(desk.provider_trouble(trip), name="provider-trouble")

    def _share_provider_state(self, trip: Trip | None) -> None:
        words = "up" if trip is None else f"down|{trip.trouble.value}|{trip.detail}"
        self._tasks.create(self._tell("provider", f"{self.runner.identity}|{words}"), name="tell")

    async def _tell(self, topic: str, text: str) -> None:
        try:
            await self._store.send_signal(topic, text)
        except Exception as exc:
            log.warning("could not tell the other processes (%s): %s", topic, exc)

    def _heard(self, topic: str, text: str) -> None:
        """What the other processes' breakers saw of the video service."""
        if topic != "provider":
            return
        sender, _, news = text.partition("|")
        if sender == self.runner.identity:
            return
        kind, _, rest = news.partition("|")
        trouble, _, detail = rest.partition("|")
        if kind == "up":
            self.breaker.heard(None)
        elif kind == "down" and trouble in {t.value for t in Trouble}:
            self.breaker.heard(Trip(Trouble(trouble), detail))

    async def sync_commands(self) -> bool:
        """Register the commands where configured, unless they are unchanged since last time."""
        guild = (
            discord.Object(self.config.discord.dev_guild_id)
            if self.config.discord.dev_guild_id
            else None
        )
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        # With their localizations: a changed translation is a changed command set.
        translator = self.tree.translator
        payload: list[dict[str, Any]] = [
            await command.get_translated_payload(self.tree, translator)
            if translator is not None
            else command.to_dict(self.tree)
            for command in self.tree.get_commands(guild=guild)
        ]
        scope = f"guild:{guild.id}" if guild else "global"
        digest = hashlib.sha256(json.dumps([scope, payload], sort_keys=True).encode()).hexdigest()
        if await self._store.get_meta(SYNC_HASH_KEY) == digest:
            log.info("commands unchanged since the last sync (%s); not syncing", scope)
            return False
        synced = await self.tree.sync(guild=guild)
        await self._store.set_meta(SYNC_HASH_KEY, digest)
        log.info("synced %d commands (%s)", len(synced), scope)
        return True

    def gateway_trouble(self) -> str | None:
        """Why the gateway is not usable right now (for /healthz), or None when connected."""
        if self.is_closed():
            return "the client is closed"
        # Sharded: each shard has a connection of its own (none until it first connects).
        shards = self.shards
        if not shards:
            return "not connected"
        down = sorted(shard_id for shard_id, shard in shards.items() if shard.is_closed())
        if down:
            return "not connected (shard " + ", ".join(map(str, down)) + ")"
        if not self.is_ready():
            return "connected, not ready yet"
        return None

    @property
    def answers(self) -> SeedanceTree:
        """The command tree, which knows whose commands are still being answered."""
        tree = self.tree
        assert isinstance(tree, SeedanceTree)
        return tree

    async def on_ready(self) -> None:
        assert self.user is not None
        log.info("logged in as %s (%d) in %d servers", self.user, self.user.id, len(self.guilds))

    async def close(self) -> None:
        # A graceful stop: refuse new requests plainly, let submits and posts under way
        # finish for a moment, hand every other job back for the next start.
        self.admission.closing = True
        # Members whose command or click is under way get their answer (the plain
        # "restarting" one, if it had not reached the store) before the connection closes.
        _, waiting = await asyncio.gather(
            self.runner.close(), self.answers.answered(self.config.jobs.shutdown_grace)
        )
        if waiting:
            log.warning("stopped with %d members' commands unanswered", waiting)
        await self._tasks.cancel_all()
        await super().close()
        self._stopped.set()

    async def run_jobs_only(self, token: str) -> None:
        """Log in over REST and run jobs, connecting no gateway shard, until closed."""
        await self.login(token)
        log.info("running jobs only: no gateway shard connected (shard_ids = [])")
        await self._stopped.wait()


async def run_bot(config: Config, secrets: Secrets) -> None:
    """Own every resource for the bot's lifetime; stop cleanly on SIGINT/SIGTERM."""
    assert secrets.discord_token and secrets.runcomfy_token
    configure_discord_endpoints(config.discord.api_base_url, config.discord.gateway_url)
    try:
        async with (
            aiohttp.ClientSession() as http_session,
            open_database(config.database) as store,
            SeedanceBot(
                config,
                http_session=http_session,
                store=store,
                runcomfy_token=secrets.runcomfy_token,
            ) as bot,
            # A process without shards only runs jobs: its health is the database's alone.
            serve_ops(
                config.metrics,
                Health(
                    store,
                    gateway=bot.gateway_trouble if config.discord.connects_gateway else None,
                ),
            ),
        ):
            loop = asyncio.get_running_loop()
            handled = []
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
                    handled.append(sig)
            try:
                if config.discord.connects_gateway:
                    await bot.start(secrets.discord_token)
                else:
                    await bot.run_jobs_only(secrets.discord_token)
            finally:
                for sig in handled:
                    loop.remove_signal_handler(sig)
    finally:
        # discord.py keeps its endpoints in class attributes: leave them as we found them, once
        # the bot has closed (its last answers to members go where its requests went).
        configure_discord_endpoints(None, None)
