from pathlib import Path

import pytest

from bot.config import (
    Config,
    ConfigError,
    Secrets,
    load_config,
    parse_config,
    resolve_config_path,
)
from bot.quota import Period

ROOT = Path(__file__).resolve().parents[2]


def test_empty_and_missing_config_run_on_defaults(tmp_path: Path) -> None:
    empty = tmp_path / "config.toml"
    empty.write_text("")
    assert load_config(empty) == Config()
    assert load_config(tmp_path / "absent.toml") == Config()
    assert Config().runcomfy.base_url == "https://model-api.runcomfy.net"
    assert Config().animate.default_resolution == "480p"


def test_a_named_config_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml", required=True)


def test_the_example_documents_every_key_with_its_default() -> None:
    # The example is the documentation: it must parse, and every value in it is the default.
    assert load_config(ROOT / "config.example.toml", required=True) == Config()


def test_contract_keys(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        """
[runcomfy]
base_url = "http://127.0.0.1:8080/"
[database]
path = "x/jobs.db"
[quota]
period = "week"
member_credits = 3
server_credits = 40
[quota.cost]
480p = { 5 = 2, 10 = 3 }
720p = { 5 = 4, 10 = 8 }
1080p = { 5 = 9, 10 = 18 }
"""
    )
    cfg = load_config(path)
    assert cfg.runcomfy.base_url == "http://127.0.0.1:8080"
    assert cfg.database.path == Path("x/jobs.db")
    assert cfg.quota.period is Period.WEEK
    assert (cfg.quota.member_credits, cfg.quota.server_credits) == (3, 40)
    assert cfg.quota.cost["1080p"][10] == 18
    assert cfg.quota.cost["480p"][5] == 2


def test_partial_cost_table_keeps_other_defaults() -> None:
    cfg = parse_config({"quota": {"cost": {"720p": {"10": 7}}}})
    assert cfg.quota.cost["720p"] == {5: 2, 10: 7}
    assert cfg.quota.cost["480p"] == {5: 1, 10: 2}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"quota": {"member_credits": -1}}, "[quota] member_credits must be an integer ≥ 0"),
        ({"quota": {"member_credits": "5"}}, "[quota] member_credits must be an integer ≥ 0"),
        ({"quota": {"server_credits": 1.5}}, "[quota] server_credits must be an integer ≥ 0"),
        ({"quota": {"member_credits": True}}, "[quota] member_credits must be an integer ≥ 0"),
        ({"quota": {"period": "year"}}, '[quota] period must be one of "day", "week", "month"'),
        ({"quota": {"membr_credits": 1}}, "[quota] membr_credits is not a known key"),
        ({"quota": {"cost": {"4k": {"5": 1}}}}, "[quota.cost] has unknown resolution '4k'"),
        ({"quota": {"cost": {"480p": {"7": 1}}}}, "[quota.cost] 480p has unknown duration '7'"),
        ({"quota": {"cost": {"480p": {"5": -2}}}}, "[quota.cost] 480p.5 must be an integer ≥ 0"),
        ({"runcomfy": {"base_url": "ftp://x"}}, "[runcomfy] base_url must be an http(s)"),
        ({"runcomfy": {"job_deadline": 0}}, "[runcomfy] job_deadline must be a number of seconds"),
        ({"database": {"path": ""}}, "[database] path must be a file path"),
        ({"animate": {"default_duration": 7}}, "[animate] default_duration must be one of 5, 10"),
        (
            {"discord": {"dev_guild_id": "abc"}},
            "[discord] dev_guild_id must be a Discord server id",
        ),
        (
            {"discord": {"requests_per_second": 0}},
            "[discord] requests_per_second must be an integer ≥ 1",
        ),
        ({"extra": {}}, "[extra] is not a known section"),
        ({"quota": 3}, "[quota] must be a table"),
    ],
)
def test_bad_values_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_invalid_toml_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[quota\nmember_credits = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_config_path_resolution(tmp_path: Path) -> None:
    assert resolve_config_path("a.toml", {}) == Path("a.toml")
    assert resolve_config_path(None, {"SEEDANCE_BOT_CONFIG": "/etc/s.toml"}) == Path("/etc/s.toml")
    assert resolve_config_path(None, {}) == Path("config.toml")


def test_secrets_come_from_the_environment_and_never_show() -> None:
    secrets = Secrets.from_env({"DISCORD_TOKEN": "disc-secret", "RUNCOMFY_API_TOKEN": " "})
    assert secrets.discord_token == "disc-secret"
    assert secrets.missing() == ["RUNCOMFY_API_TOKEN"]
    assert "disc-secret" not in repr(secrets)
    assert Secrets.from_env({}).missing() == ["DISCORD_TOKEN", "RUNCOMFY_API_TOKEN"]


# -- plain http/ws only on loopback (hostile config values) ---------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"runcomfy": {"base_url": "http://model-api.runcomfy.net"}},
            "[runcomfy] base_url may use plain http only on a loopback host",
        ),
        (
            {"runcomfy": {"base_url": "http://10.0.0.5:8000"}},
            "[runcomfy] base_url may use plain http only on a loopback host",
        ),
        (
            {"discord": {"api_base_url": "http://discord.example/api/v10"}},
            "[discord] api_base_url may use plain http only on a loopback host",
        ),
        (
            {"discord": {"gateway_url": "ws://gateway.example"}},
            "[discord] gateway_url may use plain ws only on a loopback host",
        ),
        (
            {"discord": {"gateway_url": "ws://localhost.evil.example"}},
            "[discord] gateway_url may use plain ws only on a loopback host",
        ),
        (
            {"discord": {"gateway_url": "https://gateway.example"}},
            "[discord] gateway_url must be a",
        ),
        ({"runcomfy": {"base_url": "wss://model-api.runcomfy.net"}}, "[runcomfy] base_url must be"),
        ({"discord": {"api_base_url": "https://"}}, "[discord] api_base_url must be an http(s)"),
        ({"runcomfy": {"output_hosts": "files.runcomfy.net"}}, "[runcomfy] output_hosts must be"),
        (
            {"runcomfy": {"output_hosts": ["https://files.runcomfy.net/"]}},
            "[runcomfy] output_hosts must be",
        ),
    ],
)
def test_cleartext_urls_off_loopback_stop_the_bot(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_plain_http_and_ws_on_loopback_are_accepted() -> None:
    cfg = parse_config(
        {
            "runcomfy": {"base_url": "http://[::1]:8080"},
            "discord": {
                "api_base_url": "http://localhost:9000/api/v10",
                "gateway_url": "ws://127.0.0.2:9001/gateway",
            },
        }
    )
    assert cfg.runcomfy.base_url == "http://[::1]:8080"
    assert cfg.discord.gateway_url == "ws://127.0.0.2:9001/gateway"


def test_output_hosts_default_to_runcomfy_and_can_be_set() -> None:
    assert Config().runcomfy.output_hosts == ("*.runcomfy.net",)
    cfg = parse_config({"runcomfy": {"output_hosts": ["Files.RunComfy.net.", "*.cdn.example"]}})
    assert cfg.runcomfy.output_hosts == ("files.runcomfy.net", "*.cdn.example")


def test_shards_default_to_one_process_holding_every_shard() -> None:
    discord = parse_config({}).discord
    assert (discord.shard_count, discord.shard_ids) == (1, None)
    assert discord.connects_gateway and discord.registers_commands


def test_shard_ids_name_this_process_s_shards_and_only_shard_0_registers_commands() -> None:
    first = parse_config({"discord": {"shard_count": 4, "shard_ids": [2, 0]}}).discord
    assert first.shard_ids == (0, 2)
    assert first.connects_gateway and first.registers_commands
    other = parse_config({"discord": {"shard_count": 4, "shard_ids": [1, 3]}}).discord
    assert other.connects_gateway and not other.registers_commands
    runner = parse_config({"discord": {"shard_count": 4, "shard_ids": []}}).discord
    assert runner.shard_ids == ()
    assert not runner.connects_gateway and not runner.registers_commands


@pytest.mark.parametrize(
    ("discord", "problem"),
    [
        ({"shard_count": 0}, "[discord] shard_count must be an integer ≥ 1"),
        ({"shard_count": 2, "shard_ids": [2]}, "[discord] shard_ids must be a list of distinct"),
        ({"shard_ids": [0, 0]}, "[discord] shard_ids must be a list of distinct"),
        ({"shard_ids": 0}, "[discord] shard_ids must be a list of distinct"),
        ({"shard_ids": [True]}, "[discord] shard_ids must be a list of distinct"),
    ],
)
def test_bad_shard_settings_stop_the_bot_naming_the_key(
    discord: dict[str, object], problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"discord": discord})
    assert str(info.value).startswith(problem)
