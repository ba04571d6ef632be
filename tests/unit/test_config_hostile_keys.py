"""The keys issue #12 adds: how long approvals wait, and the /animate cooldown.

Values that must stop the bot are in the hostile-input corpus (tests/unit/test_hostile_corpus.py).
"""

from __future__ import annotations

from bot.config import parse_config


def test_defaults_keep_approvals_below_a_day_and_a_short_cooldown() -> None:
    config = parse_config({})
    assert config.quota.approval_hours == 20.0
    assert config.animate.cooldown_seconds == 3.0


def test_the_keys_are_read() -> None:
    config = parse_config({"quota": {"approval_hours": 6}, "animate": {"cooldown_seconds": 0}})
    assert (config.quota.approval_hours, config.animate.cooldown_seconds) == (6.0, 0.0)
