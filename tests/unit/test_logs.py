"""What an operator's log shipper receives: one JSON object per line, secrets masked, and a
record that cannot be rendered logged anyway instead of raising into the code that logged."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from bot.logs import JsonFormatter, RedactSecrets, bind, bound, setup_logging

SECRET = "rc-very-secret-token-99"


@pytest.fixture
def shipped() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose lines go, as JSON with secrets masked, into a string."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecrets([SECRET]))
    logger = logging.getLogger("seedance.test.shipped")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    yield logger, out
    logger.handlers.clear()


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    text = out.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_one_json_object_per_record_with_the_ids_passed(
    shipped: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = shipped
    logger.info("job %d submitted as request %s", 7, "req-1", extra={"job_id": 7, "guild_id": 3})
    logger.warning("a\nmultiline\nmessage")
    first, second = lines(out)
    assert first["message"] == "job 7 submitted as request req-1"
    assert (first["level"], first["logger"]) == ("INFO", "seedance.test.shipped")
    assert (first["job_id"], first["guild_id"]) == (7, 3)
    assert "request_id" not in first
    assert first["time"].endswith("+00:00")
    assert second["message"] == "a\nmultiline\nmessage"
    assert "job_id" not in second


def test_secrets_are_masked_in_the_message_and_the_traceback(
    shipped: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = shipped
    logger.info("calling with %s", SECRET)
    try:
        raise RuntimeError(f"refused token {SECRET}")
    except RuntimeError:
        logger.exception("the call failed")
    text = out.getvalue()
    assert SECRET not in text
    first, second = lines(out)
    assert first["message"] == "calling with [redacted]"
    assert "the call failed" in second["message"]
    assert "RuntimeError: refused token [redacted]" in second["message"] + second.get("exc", "")


def test_a_record_that_cannot_be_rendered_is_logged_not_raised(
    shipped: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = shipped

    class Unprintable:
        def __str__(self) -> str:
            raise ValueError(SECRET)

    template = "%d jobs for " + SECRET
    logger.info(template, "many")  # the wrong type for %d
    logger.info(Unprintable())
    logger.info("value: %s", Unprintable())
    first, second, third = lines(out)
    assert first["message"] == "%d jobs for [redacted] [log record not rendered: TypeError]"
    assert second["message"] == " [log record not rendered: ValueError]"
    assert third["message"] == "value: %s [log record not rendered: ValueError]"
    assert SECRET not in out.getvalue()


def test_ids_bound_in_a_task_reach_its_lines_only(
    shipped: tuple[logging.Logger, io.StringIO],
) -> None:
    import contextvars

    logger, out = shipped

    def in_a_job() -> None:
        bind(job_id=12, guild_id=5, request_id=None)
        logger.info("polling")
        bind(request_id="req-12")
        logger.info("submitted")

    contextvars.copy_context().run(in_a_job)
    logger.info("outside")
    polling, submitted, outside = lines(out)
    assert (polling["job_id"], polling["guild_id"]) == (12, 5) and "request_id" not in polling
    assert submitted["request_id"] == "req-12"
    assert "job_id" not in outside and dict(bound()) == {}


def test_setup_logging_json_writes_json_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("INFO", [SECRET], fmt="json")
        logging.getLogger("bot.test").info("token %s", SECRET)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    [line] = capsys.readouterr().err.splitlines()
    assert json.loads(line)["message"] == "token [redacted]"
