"""The operator's usage report, from a real database built through the store's own methods."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.models import JobState, NewJob
from bot.quota import Limits, Period, period_window
from bot.report import (
    COLUMNS,
    ReportRow,
    add_usage_command,
    format_csv,
    format_json,
    format_table,
    totals,
    usage_report,
)
from bot.store import Store, open_store
from tests.harness.store_calls import reserve_job

GUILD_A, GUILD_B = 111, 222
ALICE, BOB, CAROL, DAVE, ERIN = 1001, 1002, 1003, 1004, 1005
MARCH_1 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
MARCH_10 = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
MARCH_11 = datetime(2026, 3, 11, 8, 0, tzinfo=UTC)


async def job(
    store: Store,
    guild_id: int,
    member_id: int,
    cost: int,
    outcome: JobState | None,
    when: datetime,
    usd: float | None = None,
) -> int:
    record = await reserve_job(
        store,
        NewJob(
            guild_id=guild_id,
            channel_id=5,
            member_id=member_id,
            prompt="a kite over the sea",
            image_url="https://cdn.example/a.png",
            last_frame_url=None,
            resolution="480p",
            duration=5,
        ),
        cost=cost,
        limits=Limits(
            member_credits=1000, server_credits=1000, member_concurrent=9, server_concurrent=9
        ),
        window=period_window(Period.DAY, when),
        now=when,
    )
    if usd is not None:
        # What the provider's result said the video cost.
        await store.set_provider_cost(record.id, usd, now=when)
    if outcome is JobState.DELIVERED:
        await store.finish_delivered(record.id, result_message_id=None, now=when)
    elif outcome is not None:
        await store.finish_failed(record.id, outcome, error="no", now=when)
    return record.id


async def build(path: Path) -> None:
    async with open_store(path) as store:
        await job(store, GUILD_A, ALICE, 1, JobState.DELIVERED, MARCH_10, 0.0875)
        await job(store, GUILD_A, ALICE, 4, JobState.DELIVERED, MARCH_11, 0.35)
        # Made and charged by the provider, but never posted: the credits go back, the money
        # was spent all the same.
        await job(store, GUILD_A, ALICE, 2, JobState.FAILED, MARCH_11, 0.175)
        await job(store, GUILD_A, ALICE, 1, JobState.CANCELLED, MARCH_11)
        await job(store, GUILD_A, BOB, 5, JobState.DELIVERED, MARCH_1, 0.4375)
        await job(store, GUILD_A, BOB, 2, JobState.TIMED_OUT, MARCH_1)
        await job(store, GUILD_A, CAROL, 2, None, MARCH_11)  # still in progress
        await job(store, GUILD_B, DAVE, 10, JobState.DELIVERED, MARCH_10, 0.875)
        await job(store, GUILD_A, ERIN, 3, JobState.DELIVERED, MARCH_10, 0.2625)
        await store.forget_member(GUILD_A, ERIN, by=ALICE, now=MARCH_11)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "usage.sqlite3"
    asyncio.run(build(path))
    return path


EVERYTHING = [
    # The forgotten member's money stays counted, like their credits.
    ReportRow(GUILD_A, 0, credits_charged=3, cost_usd=0.2625),
    ReportRow(
        GUILD_A,
        ALICE,
        delivered=2,
        failed=1,
        cancelled=1,
        credits_charged=5,
        credits_released=3,
        cost_usd=0.6125,
    ),
    ReportRow(
        GUILD_A,
        BOB,
        delivered=1,
        timed_out=1,
        credits_charged=5,
        credits_released=2,
        cost_usd=0.4375,
    ),
    ReportRow(GUILD_A, CAROL, in_progress=1, credits_held=2),
    ReportRow(GUILD_B, DAVE, delivered=1, credits_charged=10, cost_usd=0.875),
]


def report(database: Path, **filters: object) -> list[ReportRow]:
    guild_id = filters.get("guild_id")
    since = filters.get("since")
    assert guild_id is None or isinstance(guild_id, int)
    assert since is None or isinstance(since, datetime)
    return asyncio.run(usage_report(database, guild_id=guild_id, since=since))


def test_rows_per_guild_and_member_with_totals(database: Path) -> None:
    rows = report(database)
    assert rows == EVERYTHING
    assert totals(rows) == {
        "guilds": 2,
        "members": 4,  # the forgotten row is nobody in particular
        "delivered": 4,
        "failed": 1,
        "timed_out": 1,
        "cancelled": 1,
        "in_progress": 1,
        "credits_charged": 23,
        "credits_released": 5,
        "credits_held": 2,
        "cost_usd": 2.1875,
    }


def test_guild_and_since_filters(database: Path) -> None:
    assert report(database, guild_id=GUILD_B) == [EVERYTHING[-1]]
    assert report(database, guild_id=999) == []
    since = datetime(2026, 3, 11, tzinfo=UTC)
    assert report(database, since=since) == [
        ReportRow(
            GUILD_A,
            ALICE,
            delivered=1,
            failed=1,
            cancelled=1,
            credits_charged=4,
            credits_released=3,
            cost_usd=0.525,
        ),
        ReportRow(GUILD_A, CAROL, in_progress=1, credits_held=2),
    ]
    both = report(database, guild_id=GUILD_A, since=datetime(2026, 3, 10, tzinfo=UTC))
    assert [r.member_id for r in both] == [0, ALICE, CAROL]


async def test_an_open_store_works_too(database: Path) -> None:
    async with open_store(database) as store:
        assert await usage_report(store, guild_id=None, since=None) == EVERYTHING


def test_a_missing_database_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.sqlite3"
    with pytest.raises(FileNotFoundError, match="no database at"):
        report(missing)
    assert not missing.exists()


def test_naive_since_is_refused(database: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        report(database, since=datetime(2026, 3, 1))  # noqa: DTZ001 - the point of the test


def test_table_has_a_header_a_line_per_row_and_a_total() -> None:
    text = format_table(EVERYTHING)
    lines = text.splitlines()
    assert lines[0].split() == [
        "guild",
        "member",
        "delivered",
        "failed",
        "timed",
        "out",
        "cancelled",
        "in",
        "progress",
        "charged",
        "released",
        "held",
        "USD",
    ]
    assert lines[2].split()[:2] == [str(GUILD_A), "forgotten"]
    assert lines[3].split() == [
        *(str(GUILD_A), str(ALICE), "2", "1", "0", "1", "0", "5", "3", "0", "0.6125")
    ]
    assert lines[-1].split() == [
        *("TOTAL", "4", "members", "4", "1", "1", "1", "1", "23", "5", "2", "2.1875")
    ]
    # Numbers are right-aligned in their columns.
    assert len({len(line) for line in lines[3:7]}) == 1
    assert format_table([]) == "No usage recorded.\n"


def test_csv_is_one_header_and_one_line_per_row() -> None:
    parsed = list(csv.DictReader(io.StringIO(format_csv(EVERYTHING))))
    assert list(parsed[0]) == list(COLUMNS)
    assert len(parsed) == len(EVERYTHING)
    assert parsed[1]["member_id"] == str(ALICE) and parsed[1]["credits_charged"] == "5"
    assert parsed[1]["cost_usd"] == "0.6125"
    assert format_csv([]).splitlines() == [",".join(COLUMNS)]


def test_json_holds_rows_totals_and_the_filters() -> None:
    since = datetime(2026, 3, 10, tzinfo=UTC)
    document = json.loads(format_json(EVERYTHING, guild_id=GUILD_A, since=since))
    assert document["guild_id"] == GUILD_A
    assert document["since"] == "2026-03-10T00:00:00+00:00"
    assert document["rows"][1] == {
        "guild_id": GUILD_A,
        "member_id": ALICE,
        "delivered": 2,
        "failed": 1,
        "timed_out": 0,
        "cancelled": 1,
        "in_progress": 0,
        "credits_charged": 5,
        "credits_released": 3,
        "credits_held": 0,
        "cost_usd": 0.6125,
    }
    assert document["totals"]["credits_charged"] == 23
    assert document["totals"]["cost_usd"] == 2.1875


# -- the command line ---------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    """A parser shaped like the CLI's: ``usage`` registered on its subparsers."""
    root = argparse.ArgumentParser(prog="seedance-bot")
    add_usage_command(root.add_subparsers(dest="command", required=True))
    return root


def run_usage(
    *argv: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cwd: Path
) -> tuple[int, str, str]:
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("SEEDANCE_BOT_CONFIG", raising=False)
    args = parser().parse_args(["usage", *argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    assert isinstance(code, int)
    return code, out, err


@pytest.fixture
def config(database: Path, tmp_path: Path) -> Path:
    path = tmp_path / "bot.toml"
    path.write_text(f'[database]\npath = "{database.as_posix()}"\n')
    return path


def test_usage_command_prints_json_with_filters(
    config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, err = run_usage(
        "--config",
        str(config),
        "--guild",
        str(GUILD_A),
        "--since",
        "2026-03-11",
        "--format",
        "json",
        capsys=capsys,
        monkeypatch=monkeypatch,
        cwd=tmp_path,
    )
    assert (code, err) == (0, "")
    document = json.loads(out)
    assert document["since"] == "2026-03-11T00:00:00+00:00"
    assert [r["member_id"] for r in document["rows"]] == [ALICE, CAROL]


def test_usage_command_defaults_to_a_table_and_reads_the_config_from_the_environment(
    config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEEDANCE_BOT_CONFIG", str(config))
    args = parser().parse_args(["usage", "--format", "csv"])
    assert args.func(args) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 + len(EVERYTHING)

    code, out, _ = run_usage(
        "--config", str(config), capsys=capsys, monkeypatch=monkeypatch, cwd=tmp_path
    )
    assert code == 0 and out.splitlines()[-1].startswith("TOTAL")


def test_usage_command_without_a_database_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "bot.toml"
    config.write_text('[database]\npath = "missing/bot.sqlite3"\n')
    code, out, err = run_usage(
        "--config", str(config), capsys=capsys, monkeypatch=monkeypatch, cwd=tmp_path
    )
    assert (code, out) == (1, "")
    assert err == "seedance-bot: no database at missing/bot.sqlite3\n"
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "11/03/2026"], "is not a date; use YYYY-MM-DD"),
        (["--guild", "abc"], "is not a server id"),
        (["--format", "xml"], "invalid choice"),
    ],
)
def test_bad_arguments_stop_with_a_usage_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        parser().parse_args(["usage", *argv])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
