"""The keys issue #12 adds: how long approvals wait, and the /animate cooldown."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, parse_config


def test_defaults_keep_approvals_below_a_day_and_a_short_cooldown() -> None:
    config = parse_config({})
    assert config.quota.approval_hours == 20.0
    assert config.animate.cooldown_seconds == 3.0


def test_the_keys_are_read() -> None:
    config = parse_config({"quota": {"approval_hours": 6}, "animate": {"cooldown_seconds": 0}})
    assert (config.quota.approval_hours, config.animate.cooldown_seconds) == (6.0, 0.0)


@pytest.mark.parametrize("hours", [0, -1, 24, 48, "20", True])
def test_approvals_cannot_outlive_discords_attachment_links(hours: object) -> None:
    with pytest.raises(ConfigError, match=r"\[quota\] approval_hours"):
        parse_config({"quota": {"approval_hours": hours}})


@pytest.mark.parametrize("seconds", [-1, "3", float("nan")])
def test_a_cooldown_is_a_number_of_seconds(seconds: object) -> None:
    with pytest.raises(ConfigError, match=r"\[animate\] cooldown_seconds"):
        parse_config({"animate": {"cooldown_seconds": seconds}})
