"""The embedded world: a local Discord and a local RunComfy, and a config pointing the bot at them.

`seedance-bot sandbox` and the end-to-end tests both start the real bot, through its real
start-up path, against this.
"""

from __future__ import annotations

import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from bot.config import (
    AnimateConfig,
    Config,
    DatabaseConfig,
    DiscordConfig,
    QuotaConfig,
    RunComfyConfig,
    Secrets,
)
from sandbox.discord import DiscordEmulator
from sandbox.discord.page_access import is_loopback_host
from sandbox.runcomfy import RunComfyEmulator


@dataclass(frozen=True)
class SandboxSettings:
    """What a person (or a test) may tune about the embedded world."""

    host: str = "127.0.0.1"
    port: int = 8080
    queue_seconds: float = 4.0
    run_seconds: float = 12.0
    interaction_token_lifetime: float = 900.0
    ack_deadline: float = 3.0
    upload_limit: int = 10 * 1024 * 1024
    video_size: tuple[int, int] | None = None
    fps: int = 24
    # How RunComfy's file CDN answers (see RunComfyEmulator for the defaults' sources).
    output_content_type: str = "binary/octet-stream"
    output_redirect: bool = False
    status_edit_interval: float = 2.0
    poll_interval: float = 1.0
    job_deadline: float = 600.0
    quota: QuotaConfig = field(default_factory=QuotaConfig)
    cooldown_seconds: float = 3.0
    """The bot's pause between one member's /animate requests (`[animate] cooldown_seconds`)."""
    database: Path | None = None
    rate_limits: bool = True


class Sandbox:
    """Both emulators on loopback, fresh tokens, a fresh database; `config` points at them."""

    def __init__(self, settings: SandboxSettings | None = None) -> None:
        self.settings = settings or SandboxSettings()
        self.secrets = Secrets(
            discord_token=f"sandbox.{secrets.token_urlsafe(24)}",
            runcomfy_token=f"sandbox-{secrets.token_urlsafe(24)}",
        )
        s = self.settings
        assert self.secrets.discord_token and self.secrets.runcomfy_token
        self.discord = DiscordEmulator(
            host=s.host,
            port=s.port,
            bot_token=self.secrets.discord_token,
            interaction_token_lifetime=s.interaction_token_lifetime,
            ack_deadline=s.ack_deadline,
            upload_limit=s.upload_limit,
            rate_limits=s.rate_limits,
        )
        self.runcomfy = RunComfyEmulator(
            token=self.secrets.runcomfy_token,
            queue_seconds=s.queue_seconds,
            run_seconds=s.run_seconds,
            host=s.host,
            video_size=s.video_size,
            fps=s.fps,
            output_content_type=s.output_content_type,
            output_redirect=s.output_redirect,
        )
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """The page a person opens, with this run's key (the page refuses any other)."""
        return self.discord.page_url

    @property
    def loopback_only(self) -> bool:
        """Whether only this machine can reach the page (otherwise anyone on the network can)."""
        return is_loopback_host(self.settings.host)

    @property
    def config(self) -> Config:
        s = self.settings
        if s.database is not None:
            database = s.database
        else:
            assert self._tmp is not None, "start the sandbox first"
            database = Path(self._tmp.name) / "sandbox.sqlite3"
        return Config(
            discord=DiscordConfig(
                api_base_url=self.discord.api_base,
                gateway_url=self.discord.gateway_url,
                status_edit_interval=s.status_edit_interval,
            ),
            runcomfy=RunComfyConfig(
                base_url=self.runcomfy.base_url,
                poll_interval=s.poll_interval,
                job_deadline=s.job_deadline,
                connect_timeout=2.0,
                read_timeout=10.0,
            ),
            database=DatabaseConfig(path=database),
            quota=s.quota,
            animate=AnimateConfig(cooldown_seconds=s.cooldown_seconds),
        )

    async def start(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="seedance-sandbox-")
        await self.runcomfy.start()
        await self.discord.start()

    async def close(self) -> None:
        await self.discord.close()
        await self.runcomfy.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
