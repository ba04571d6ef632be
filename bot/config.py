"""Configuration: one TOML file read once at start, validated into frozen sections.

Secrets never live here: the tokens come from the environment only (see `Secrets`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.config_checks import (
    ConfigError,
    Section,
    choice,
    database_url,
    hosts,
    hours_below_a_day,
    http_url,
    integer,
    is_loopback_host,
    listen_host,
    optional,
    path,
    port,
    seconds,
    shard_ids,
    snowflake,
    ws_url,
)
from bot.models import MAX_CONCURRENT, MAX_CREDITS, GuildDefaults
from bot.quota import DEFAULT_COSTS, Period

__all__ = [
    "AnimateConfig",
    "Config",
    "ConfigError",
    "DatabaseConfig",
    "DiscordConfig",
    "JobsConfig",
    "LoggingConfig",
    "MetricsConfig",
    "QuotaConfig",
    "RunComfyConfig",
    "Secrets",
    "is_loopback_host",
    "load_config",
    "parse_config",
    "resolve_config_path",
]

RESOLUTIONS = ("480p", "720p", "1080p")
DURATIONS = (5, 10)
DEFAULT_BASE_URL = "https://model-api.runcomfy.net"
DEFAULT_OUTPUT_HOSTS = ("*.runcomfy.net",)
"""Hosts finished videos may be fetched from: RunComfy's CDN hosts (files.runcomfy.net,
playgrounds-storage-public.runcomfy.net, serverless-api-storage.runcomfy.net, as its CLI lists
them) and the API host all live under runcomfy.net. ``*.`` means the domain and its subdomains."""
CONFIG_ENV = "SEEDANCE_BOT_CONFIG"
DISCORD_TOKEN_ENV = "DISCORD_TOKEN"
RUNCOMFY_TOKEN_ENV = "RUNCOMFY_API_TOKEN"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class DiscordConfig:
    dev_guild_id: int | None = None
    status_edit_interval: float = 5.0
    requests_per_second: int = 45
    """This process's share of Discord's global limit (50 requests a second per bot)."""
    api_base_url: str | None = None
    gateway_url: str | None = None
    shard_count: int = 1
    """Gateway shards of the whole bot, across every process."""
    shard_ids: tuple[int, ...] | None = None
    """The shards this process connects; None: all of them. Empty: none, the process only
    runs jobs (over REST)."""

    @property
    def connects_gateway(self) -> bool:
        """Whether this process connects any gateway shard."""
        return self.shard_ids is None or len(self.shard_ids) > 0

    @property
    def registers_commands(self) -> bool:
        """Whether this process registers the commands: the one holding shard 0."""
        return self.shard_ids is None or 0 in self.shard_ids


@dataclass(frozen=True)
class RunComfyConfig:
    base_url: str = DEFAULT_BASE_URL
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    submit_timeout: float = 90.0
    job_deadline: float = 1800.0
    poll_interval: float = 5.0
    max_video_bytes: int = 200_000_000
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0
    max_concurrent_jobs: int = 20
    output_hosts: tuple[str, ...] = DEFAULT_OUTPUT_HOSTS


@dataclass(frozen=True)
class DatabaseConfig:
    path: Path = Path("seedance-bot.sqlite3")
    url: str | None = field(default=None, repr=False)
    """A PostgreSQL libpq URI; when set, PostgreSQL is the store and ``path`` is ignored.
    Out of ``repr``: it may hold a password."""


def _default_costs() -> dict[str, dict[int, int]]:
    return {res: dict(row) for res, row in DEFAULT_COSTS.items()}


@dataclass(frozen=True)
class QuotaConfig:
    period: Period = Period.DAY
    member_credits: int = 10
    server_credits: int = 100
    member_concurrent_jobs: int = 1
    server_concurrent_jobs: int = 5
    cost: Mapping[str, Mapping[int, int]] = field(default_factory=_default_costs)
    approval_hours: float = 20.0
    """How long a request over a member's cap waits for a moderator before it expires: below
    the 24 hours Discord's attachment URLs live, so an approved job can still fetch its image."""

    def guild_defaults(self) -> GuildDefaults:
        """A server's budgets until its moderators change them."""
        return GuildDefaults(
            period=self.period,
            server_credits=self.server_credits,
            member_credits=self.member_credits,
            member_concurrent=self.member_concurrent_jobs,
            server_concurrent=self.server_concurrent_jobs,
        )


@dataclass(frozen=True)
class AnimateConfig:
    default_resolution: str = "480p"
    default_duration: int = 5
    cooldown_seconds: float = 3.0
    """How long a member waits between two /animate requests that reach the image check."""


@dataclass(frozen=True)
class JobsConfig:
    lease_seconds: float = 30.0
    """How long a job stays with a process that stopped answering before another takes it."""
    shutdown_grace: float = 10.0
    """On SIGTERM, how long submits and deliveries in flight may finish before the stop."""
    max_attempts: int = 3
    """Runs of one job that may end in an unforeseen error before it is ended plainly."""


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "INFO"
    format: str = "text"
    """``text`` for people, ``json`` for a log shipper: one JSON object per line."""


@dataclass(frozen=True)
class MetricsConfig:
    port: int = 0
    """Where ``/metrics`` and ``/healthz`` are served; 0 turns them off."""
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class Config:
    discord: DiscordConfig = field(default_factory=DiscordConfig)
    runcomfy: RunComfyConfig = field(default_factory=RunComfyConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    quota: QuotaConfig = field(default_factory=QuotaConfig)
    animate: AnimateConfig = field(default_factory=AnimateConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)


@dataclass(frozen=True)
class Secrets:
    """Tokens read from the environment. `repr` never shows them."""

    discord_token: str | None = field(default=None, repr=False)
    runcomfy_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Secrets:
        env = os.environ if env is None else env
        return cls(
            discord_token=env.get(DISCORD_TOKEN_ENV, "").strip() or None,
            runcomfy_token=env.get(RUNCOMFY_TOKEN_ENV, "").strip() or None,
        )

    def missing(self) -> list[str]:
        """Names of the environment variables that are not set."""
        names = []
        if not self.discord_token:
            names.append(DISCORD_TOKEN_ENV)
        if not self.runcomfy_token:
            names.append(RUNCOMFY_TOKEN_ENV)
        return names


def resolve_config_path(cli_path: str | None, env: Mapping[str, str] | None = None) -> Path:
    """`--config`, then `$SEEDANCE_BOT_CONFIG`, then `./config.toml`."""
    env = os.environ if env is None else env
    if cli_path:
        return Path(cli_path)
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    return Path("config.toml")


def load_config(path: Path, *, required: bool = False) -> Config:
    """Read and validate `path`. A missing file means all defaults unless `required`."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise ConfigError(f"config file {path} does not exist") from None
        return Config()
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return parse_config(data)


def _costs(_where: str, value: Any) -> dict[str, dict[int, int]]:
    where = "[quota.cost]"
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table like 480p = {{ 5 = 1, 10 = 2 }}")
    costs = _default_costs()
    for resolution, row in value.items():
        if resolution not in RESOLUTIONS:
            raise ConfigError(f"{where} has unknown resolution {resolution!r}")
        if not isinstance(row, dict):
            raise ConfigError(f"{where} {resolution} must be a table like {{ 5 = 1, 10 = 2 }}")
        for duration, credits in row.items():
            if not str(duration).isdigit() or int(duration) not in DURATIONS:
                raise ConfigError(f"{where} {resolution} has unknown duration {duration!r}")
            costs[resolution][int(duration)] = integer(0, MAX_CREDITS)(
                f"{where} {resolution}.{duration}", credits
            )
    return costs


def parse_config(data: Mapping[str, Any]) -> Config:
    """Validate a parsed TOML document; raise `ConfigError` naming the first bad key."""
    sections = {"discord", "runcomfy", "database", "quota", "animate", "jobs", "logging", "metrics"}
    for name in data:
        if name not in sections:
            raise ConfigError(f"[{name}] is not a known section")

    d = Section(
        data,
        "discord",
        {
            "dev_guild_id",
            "status_edit_interval",
            "requests_per_second",
            "api_base_url",
            "gateway_url",
            "shard_count",
            "shard_ids",
        },
    )
    shard_count = d.get("shard_count", 1, integer(1))
    discord = DiscordConfig(
        dev_guild_id=d.get("dev_guild_id", None, snowflake),
        status_edit_interval=d.get("status_edit_interval", 5.0, seconds(0.0)),
        requests_per_second=d.get("requests_per_second", 45, integer(1)),
        api_base_url=d.get("api_base_url", None, optional(http_url)),
        gateway_url=d.get("gateway_url", None, optional(ws_url)),
        shard_count=shard_count,
        shard_ids=d.get("shard_ids", None, shard_ids(shard_count)),
    )

    r = Section(
        data,
        "runcomfy",
        {
            "base_url",
            "connect_timeout",
            "read_timeout",
            "submit_timeout",
            "job_deadline",
            "poll_interval",
            "max_video_bytes",
            "breaker_failures",
            "breaker_cooldown",
            "max_concurrent_jobs",
            "output_hosts",
        },
    )
    runcomfy = RunComfyConfig(
        base_url=r.get("base_url", DEFAULT_BASE_URL, http_url),
        connect_timeout=r.get("connect_timeout", 10.0, seconds(0.1)),
        read_timeout=r.get("read_timeout", 30.0, seconds(0.1)),
        submit_timeout=r.get("submit_timeout", 90.0, seconds(0.1)),
        job_deadline=r.get("job_deadline", 1800.0, seconds(1.0)),
        poll_interval=r.get("poll_interval", 5.0, seconds(0.05)),
        max_video_bytes=r.get("max_video_bytes", 200_000_000, integer(1)),
        breaker_failures=r.get("breaker_failures", 5, integer(1)),
        breaker_cooldown=r.get("breaker_cooldown", 30.0, seconds(0.0)),
        max_concurrent_jobs=r.get("max_concurrent_jobs", 20, integer(1)),
        output_hosts=r.get("output_hosts", DEFAULT_OUTPUT_HOSTS, hosts),
    )

    db = Section(data, "database", {"path", "url"})
    database = DatabaseConfig(
        path=db.get("path", DatabaseConfig.path, path),
        url=db.get("url", None, database_url),
    )

    q = Section(
        data,
        "quota",
        {
            "period",
            "member_credits",
            "server_credits",
            "member_concurrent_jobs",
            "server_concurrent_jobs",
            "cost",
            "approval_hours",
        },
    )
    quota = QuotaConfig(
        period=Period(q.get("period", "day", choice(tuple(p.value for p in Period)))),
        member_credits=q.get("member_credits", 10, integer(0, MAX_CREDITS)),
        server_credits=q.get("server_credits", 100, integer(0, MAX_CREDITS)),
        member_concurrent_jobs=q.get("member_concurrent_jobs", 1, integer(1, MAX_CONCURRENT)),
        server_concurrent_jobs=q.get("server_concurrent_jobs", 5, integer(1, MAX_CONCURRENT)),
        cost=q.get("cost", _default_costs(), _costs),
        approval_hours=q.get("approval_hours", 20.0, hours_below_a_day),
    )

    a = Section(data, "animate", {"default_resolution", "default_duration", "cooldown_seconds"})
    animate = AnimateConfig(
        default_resolution=a.get("default_resolution", "480p", choice(RESOLUTIONS)),
        default_duration=a.get("default_duration", 5, choice(DURATIONS)),
        cooldown_seconds=a.get("cooldown_seconds", 3.0, seconds(0.0)),
    )

    j = Section(data, "jobs", {"lease_seconds", "shutdown_grace", "max_attempts"})
    jobs = JobsConfig(
        lease_seconds=j.get("lease_seconds", 30.0, seconds(1.0)),
        shutdown_grace=j.get("shutdown_grace", 10.0, seconds(0.0)),
        max_attempts=j.get("max_attempts", 3, integer(1)),
    )

    lg = Section(data, "logging", {"level", "format"})
    level = lg.get("level", "INFO", lambda where, v: choice(LOG_LEVELS)(where, str(v).upper()))
    log_format = lg.get("format", "text", choice(LOG_FORMATS))

    m = Section(data, "metrics", {"port", "host"})
    metrics = MetricsConfig(
        port=m.get("port", 0, port), host=m.get("host", MetricsConfig.host, listen_host)
    )

    return Config(
        discord=discord,
        runcomfy=runcomfy,
        database=database,
        quota=quota,
        animate=animate,
        jobs=jobs,
        logging=LoggingConfig(level=level, format=log_format),
        metrics=metrics,
    )
