"""The operator's usage report: jobs and credits per server and member, from the database.

``seedance-bot usage [--config PATH] [--guild ID] [--since YYYY-MM-DD] [--format table|csv|json]``
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.config import load_config, resolve_config_path
from bot.models import ReportRow
from bot.store import Store, open_database, open_store

__all__ = [
    "FORMATS",
    "ReportRow",
    "add_usage_command",
    "cmd_usage",
    "format_csv",
    "format_json",
    "format_table",
    "parse_since",
    "totals",
    "usage_report",
]

COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ReportRow))
"""Every column of a row, in the order the formats print them."""

_HEADINGS = {
    "guild_id": "guild",
    "member_id": "member",
    "delivered": "delivered",
    "failed": "failed",
    "timed_out": "timed out",
    "cancelled": "cancelled",
    "in_progress": "in progress",
    "credits_charged": "charged",
    "credits_released": "released",
    "credits_held": "held",
    "cost_usd": "USD",
}
_MONEY = frozenset({"cost_usd"})
"""Columns in US dollars: floats, shown to four places (the provider's own precision)."""


def _cell(column: str, value: float) -> str:
    return f"{value:.4f}" if column in _MONEY else str(value)


async def usage_report(
    store_or_path: Store | str | Path, *, guild_id: int | None, since: datetime | None
) -> list[ReportRow]:
    """Rows per server and member; from an open store, or from the database file at a path.

    A path must name an existing database: a report never creates one. ``since`` must be
    timezone-aware.
    """
    if since is not None and since.utcoffset() is None:
        raise ValueError("since must be a timezone-aware datetime")
    if isinstance(store_or_path, str | os.PathLike):
        path = Path(store_or_path)
        if not await asyncio.to_thread(path.is_file):
            raise FileNotFoundError(f"no database at {path}")
        async with open_store(path) as opened:
            return await opened.usage_rows(guild_id=guild_id, since=since)
    store: Store = store_or_path
    return await store.usage_rows(guild_id=guild_id, since=since)


def totals(rows: Sequence[ReportRow]) -> dict[str, int | float]:
    """The sum of every numeric column, plus the number of servers and members counted."""
    summed: dict[str, int | float] = {
        name: sum(getattr(r, name) for r in rows) for name in COLUMNS[2:]
    }
    for name in _MONEY:
        summed[name] = round(summed[name], 6)
    return {
        "guilds": len({r.guild_id for r in rows}),
        "members": len({(r.guild_id, r.member_id) for r in rows if r.member_id}),
        **summed,
    }


def _member(member_id: int) -> str:
    # Member id 0 holds the charges of members a moderator asked the bot to forget.
    return "forgotten" if member_id == 0 else str(member_id)


def format_table(rows: Sequence[ReportRow]) -> str:
    """Aligned columns for a terminal, with a TOTAL line."""
    if not rows:
        return "No usage recorded.\n"
    body = [
        [str(r.guild_id), _member(r.member_id), *(_cell(c, getattr(r, c)) for c in COLUMNS[2:])]
        for r in rows
    ]
    summed = totals(rows)
    footer = [
        "TOTAL",
        f"{summed['members']} members",
        *(_cell(c, summed[c]) for c in COLUMNS[2:]),
    ]
    table = [[_HEADINGS[c] for c in COLUMNS], *body, footer]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]

    def render(line: list[str]) -> str:
        # Ids and labels to the left, numbers to the right.
        cells = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [render(table[0]), rule, *(render(line) for line in body), rule, render(footer)]
    return "\n".join(lines) + "\n"


def format_csv(rows: Sequence[ReportRow]) -> str:
    """One header line and one line per row; no total line, so a spreadsheet can sum it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([_cell(c, getattr(r, c)) for c in COLUMNS])
    return out.getvalue()


def format_json(
    rows: Sequence[ReportRow],
    *,
    guild_id: int | None = None,
    since: datetime | None = None,
) -> str:
    """``{"guild_id", "since", "rows": [...], "totals": {...}}``, ids as numbers."""
    document: dict[str, Any] = {
        "guild_id": guild_id,
        "since": None if since is None else since.astimezone(UTC).isoformat(),
        "rows": [{**asdict(r), "cost_usd": round(r.cost_usd, 6)} for r in rows],
        "totals": totals(rows),
    }
    return json.dumps(document, indent=2) + "\n"


FORMATS: dict[str, Callable[[Sequence[ReportRow]], str]] = {
    "table": format_table,
    "csv": format_csv,
    "json": format_json,
}


def parse_since(text: str) -> datetime:
    """``YYYY-MM-DD`` as midnight UTC at the start of that day (argparse type)."""
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date; use YYYY-MM-DD, e.g. 2026-11-01"
        ) from None
    return day


def _guild_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a server id (a positive number)")
    return value


def cmd_usage(args: argparse.Namespace) -> int:
    """Print the report for ``args`` (config, guild, since, format); the exit code.

    ``bot.config.ConfigError`` propagates, for the CLI's one-line config errors.
    """
    config = load_config(resolve_config_path(args.config), required=bool(args.config))

    async def from_postgres() -> list[ReportRow]:
        async with open_database(config.database) as store:
            return await usage_report(store, guild_id=args.guild, since=args.since)

    try:
        rows = asyncio.run(
            from_postgres()
            if config.database.url
            else usage_report(config.database.path, guild_id=args.guild, since=args.since)
        )
    except FileNotFoundError as exc:
        sys.stderr.write(f"seedance-bot: {exc}\n")
        return 1
    if args.format == "json":
        text = format_json(rows, guild_id=args.guild, since=args.since)
    else:
        text = FORMATS[args.format](rows)
    sys.stdout.write(text)
    return 0


def add_usage_command(subparsers: Any) -> None:
    """Register ``usage`` on an argparse ``add_subparsers()`` object, with :func:`cmd_usage`."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "usage",
        help="print jobs and credits per server and member from the database",
        description=(
            "Jobs delivered, failed, timed out, cancelled and in progress, credits charged, "
            "released and held, and what the provider charged in USD (as its results reported "
            "it), per server and member. Member 'forgotten' holds the charges of members a "
            "moderator asked the bot to forget."
        ),
    )
    parser.add_argument(
        "--config", help="config file (default: $SEEDANCE_BOT_CONFIG, then ./config.toml)"
    )
    parser.add_argument("--guild", type=_guild_id, help="only this server (its id)")
    parser.add_argument(
        "--since",
        type=parse_since,
        metavar="YYYY-MM-DD",
        help="only jobs accepted on or after this day (UTC)",
    )
    parser.add_argument(
        "--format", choices=tuple(FORMATS), default="table", help="output (default: %(default)s)"
    )
    parser.set_defaults(func=cmd_usage)
