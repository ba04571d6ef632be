"""The operator's commands, run as an operator runs them: a subprocess with an environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "RUNCOMFY_API_TOKEN")}
    base.pop("SEEDANCE_BOT_CONFIG", None)
    root = Path(__file__).resolve().parents[2]
    base["PYTHONPATH"] = str(root)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**base, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_run_without_tokens_names_the_missing_variables(tmp_path: Path) -> None:
    both = run("run", cwd=tmp_path)
    assert both.returncode == 2
    assert "DISCORD_TOKEN and RUNCOMFY_API_TOKEN are not set" in both.stderr
    one = run("run", env={"DISCORD_TOKEN": "x-discord-secret"}, cwd=tmp_path)
    assert one.returncode == 2
    assert "RUNCOMFY_API_TOKEN is not set" in one.stderr
    assert "DISCORD_TOKEN" not in one.stderr.replace("RUNCOMFY_API_TOKEN", "")
    assert "x-discord-secret" not in one.stderr + one.stdout


def test_bad_config_stops_with_one_line_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[quota]\nmember_credits = -3\n")
    result = run("run", env={"DISCORD_TOKEN": "a", "RUNCOMFY_API_TOKEN": "b"}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "seedance-bot: [quota] member_credits must be an integer ≥ 0"


def test_config_path_from_the_environment(tmp_path: Path) -> None:
    bad = tmp_path / "elsewhere.toml"
    bad.write_text('[quota]\nperiod = "fortnight"\n')
    result = run("check", env={"SEEDANCE_BOT_CONFIG": str(bad)}, cwd=tmp_path)
    assert result.returncode == 2
    assert "[quota] period must be one of" in result.stderr


def test_check_migrates_and_reports_tokens_without_printing_them(tmp_path: Path) -> None:
    config = tmp_path / "bot.toml"
    config.write_text('[database]\npath = "data/bot.sqlite3"\n')
    result = run(
        "check",
        "--config",
        str(config),
        env={"DISCORD_TOKEN": "tok-discord-123", "RUNCOMFY_API_TOKEN": "tok-rc-456"},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "DISCORD_TOKEN: set" in result.stdout
    assert "RUNCOMFY_API_TOKEN: set" in result.stdout
    assert "schema version" in result.stdout
    assert (tmp_path / "data" / "bot.sqlite3").exists()
    assert "tok-discord-123" not in result.stdout + result.stderr
    assert "tok-rc-456" not in result.stdout + result.stderr

    missing = run("check", "--config", str(config), cwd=tmp_path)
    assert missing.returncode == 1
    assert "DISCORD_TOKEN: missing" in missing.stdout


def test_a_named_config_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    result = run("check", "--config", "nope.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert "nope.toml does not exist" in result.stderr


def test_usage_report_from_the_command_line(tmp_path: Path) -> None:
    config = tmp_path / "bot.toml"
    config.write_text('[database]\npath = "bot.sqlite3"\n')
    missing = run("usage", "--config", str(config), cwd=tmp_path)
    assert missing.returncode == 1 and "no database" in missing.stderr
    assert run("check", "--config", str(config), cwd=tmp_path).returncode == 1  # creates it
    table = run("usage", "--config", str(config), "--format", "json", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert '"rows": []' in table.stdout
