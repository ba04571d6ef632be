"""`seedance-bot run | check`: the operator's entry point."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from bot.config import Config, ConfigError, Secrets, load_config, resolve_config_path
from bot.logs import setup_logging
from bot.report import add_usage_command


def _load(args: argparse.Namespace) -> Config:
    path = resolve_config_path(args.config)
    # A path named on purpose must exist; the implicit ./config.toml may be absent (defaults).
    return load_config(path, required=bool(args.config))


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args)
    secrets = Secrets.from_env()
    missing = secrets.missing()
    if missing:
        names = " and ".join(missing)
        verb = "is" if len(missing) == 1 else "are"
        print(
            f"seedance-bot: {names} {verb} not set; export the token(s) and run again.",
            file=sys.stderr,
        )
        return 2
    setup_logging(
        config.logging.level,
        [secrets.discord_token, secrets.runcomfy_token],
        fmt=config.logging.format,
    )
    from bot.app import run_bot

    asyncio.run(run_bot(config, secrets))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    path = resolve_config_path(args.config)
    config = _load(args)
    print(f"config: {path} ok" if path.exists() else f"config: {path} not found, using defaults")
    from bot.store import describe_database, open_database

    async def migrate() -> int:
        async with open_database(config.database) as store:
            return await store.schema_version()

    version = asyncio.run(migrate())
    print(f"database: {describe_database(config.database)} at schema version {version}")
    secrets = Secrets.from_env()
    missing = set(secrets.missing())
    for name in ("DISCORD_TOKEN", "RUNCOMFY_API_TOKEN"):
        print(f"{name}: {'missing' if name in missing else 'set'}")
    return 1 if missing else 0


def cmd_health(args: argparse.Namespace) -> int:
    """Exit 0 when the running bot's /healthz answers 200, else 1 (a container's health check)."""
    from bot.ops.probe import ask_health

    healthy, said = ask_health(_load(args).metrics)
    print(f"seedance-bot health: {said}", file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


def cmd_sandbox(args: argparse.Namespace) -> int:
    from bot.app import run_bot
    from sandbox.world import Sandbox, SandboxSettings

    setup_logging(args.log_level)
    settings = SandboxSettings(
        host=args.host,
        port=args.port,
        queue_seconds=args.queue_seconds,
        run_seconds=args.run_seconds,
    )

    async def serve() -> None:
        async with Sandbox(settings) as sandbox:
            # Flushed: the address is the one thing a person (or a script piping us) waits for.
            print(
                f"seedance-bot sandbox: open {sandbox.url} in your browser (Ctrl-C stops it)",
                flush=True,
            )
            if not sandbox.loopback_only:
                print(
                    f"seedance-bot sandbox: warning: listening on {args.host}, not only on this "
                    "machine: anyone who can reach it over the network and sees the address "
                    "above (its key travels unencrypted over plain http) can drive the sandbox, "
                    "acting as any of its people and reading every message. It spends nothing "
                    "real (no Discord, no RunComfy), but --host 127.0.0.1 keeps it to yourself.",
                    file=sys.stderr,
                    flush=True,
                )
            await run_bot(sandbox.config, sandbox.secrets)

    asyncio.run(serve())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seedance-bot", description="Discord bot for Seedance image-to-video on RunComfy."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, help_text in (
        ("run", cmd_run, "run the bot"),
        ("check", cmd_check, "validate the config, migrate the database, report the tokens"),
        ("health", cmd_health, "ask the running bot's /healthz ([metrics] port): exit 0 if ok"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument(
            "--config", help="config file (default: $SEEDANCE_BOT_CONFIG, then ./config.toml)"
        )
        p.set_defaults(func=func)
    sandbox = sub.add_parser(
        "sandbox",
        help="run the real bot against a local Discord and RunComfy, with a web page to try it",
    )
    sandbox.add_argument(
        "--host", default="127.0.0.1", help="address of the page (default: %(default)s)"
    )
    sandbox.add_argument(
        "--port", type=int, default=8080, help="port of the page (default: %(default)s)"
    )
    sandbox.add_argument(
        "--queue-seconds", type=float, default=4.0, help="time a job waits in the queue"
    )
    sandbox.add_argument("--run-seconds", type=float, default=12.0, help="time a job takes to run")
    sandbox.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    sandbox.set_defaults(func=cmd_sandbox)
    add_usage_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"seedance-bot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
