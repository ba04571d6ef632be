"""``[database] url``: PostgreSQL when set, its form checked at load, and a database that cannot
be used stopping the bot at start with one line that names the problem and never the password."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, DatabaseConfig, parse_config
from bot.store import describe_database
from bot.store.sqlite.schema import load_migrations
from tests.harness.postgres import PostgresServer
from tests.unit.test_cli import run

SECRET = "s3cret-pass-word"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bot:pw@db.example:5432/seedance",
        "postgres://db.example/seedance",
        "postgresql:///seedance?host=/run/postgresql&user=bot",
    ],
)
def test_a_postgresql_url_is_taken_and_the_path_kept_aside(url: str) -> None:
    config = parse_config({"database": {"url": url, "path": "x/jobs.db"}})
    assert config.database.url == url
    assert config.database.path == Path("x/jobs.db")


def test_no_url_or_an_empty_one_means_sqlite() -> None:
    assert parse_config({}).database.url is None
    assert parse_config({"database": {"url": ""}}).database.url is None


@pytest.mark.parametrize(
    "url",
    [
        f"mysql://root:{SECRET}@db/seedance",
        f"postgresql://root:{SECRET}@db:notaport/seedance",
        f"postgresql://root:{SECRET}@db/seed ance",
        5432,
    ],
)
def test_a_bad_url_names_the_key_and_never_echoes_it(url: object) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"database": {"url": url}})
    message = str(info.value)
    assert message.startswith("[database] url ")
    assert SECRET not in message and "\n" not in message


def test_the_password_stays_out_of_reprs_and_descriptions() -> None:
    config = DatabaseConfig(url=f"postgresql://bot:{SECRET}@db/seedance?password={SECRET}")
    assert SECRET not in repr(config)
    assert describe_database(config) == "postgresql://bot:***@db/seedance?password=***"
    assert describe_database(DatabaseConfig(path=Path("a/b.db"))) == "a/b.db"


# -- at start, against a real server ----------------------------------------------------------


def start(tmp_path: Path, url: str) -> tuple[int, list[str]]:
    """``seedance-bot run`` with ``url`` as the database; its exit code and stderr lines."""
    (tmp_path / "config.toml").write_text(f'[database]\nurl = "{url}"\n')
    result = run("run", env={"DISCORD_TOKEN": "a", "RUNCOMFY_API_TOKEN": "b"}, cwd=tmp_path)
    assert SECRET not in result.stdout + result.stderr
    return result.returncode, result.stderr.strip().splitlines()


def test_wrong_credentials_stop_the_bot_with_one_line(
    tmp_path: Path, postgres_server: PostgresServer, postgres_database: str
) -> None:
    url = postgres_server.password_url(postgres_database, password=SECRET)
    code, lines = start(tmp_path, url)
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith("seedance-bot: [database] url: PostgreSQL at postgresql://")
    assert "password authentication failed" in lines[0]


def test_an_unreachable_server_stops_the_bot_with_one_line(tmp_path: Path) -> None:
    url = f"postgresql://bot:{SECRET}@/seedance?host={tmp_path / 'no-server-here'}"
    code, lines = start(tmp_path, url)
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith("seedance-bot: [database] url: cannot reach PostgreSQL at ")


def test_a_newer_schema_stops_the_bot_and_check_names_the_database(
    tmp_path: Path, postgres_server: PostgresServer, postgres_database: str
) -> None:
    url = postgres_server.url(postgres_database)
    (tmp_path / "config.toml").write_text(f'[database]\nurl = "{url}"\n')
    latest = load_migrations("bot.store.postgres")[-1].version
    checked = run("check", cwd=tmp_path)
    assert f"database: {url} at schema version {latest}" in checked.stdout
    postgres_server.sql(
        "INSERT INTO schema_migrations (version, name) VALUES (99, 'future')", postgres_database
    )
    code, lines = start(tmp_path, url)
    assert code == 2
    assert lines == [
        f"seedance-bot: [database] url: PostgreSQL at {url}: database schema version 99 is "
        f"newer than this bot knows ({latest}); upgrade the bot"
    ]


def test_the_usage_report_reads_postgresql_when_configured(
    tmp_path: Path, postgres_server: PostgresServer, postgres_database: str
) -> None:
    url = postgres_server.url(postgres_database)
    (tmp_path / "config.toml").write_text(f'[database]\nurl = "{url}"\n')
    result = run("usage", "--format", "csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("guild")
    assert not (tmp_path / "seedance-bot.sqlite3").exists()
