"""A job's log lines name it: the real runner binds the job's ids to the task that runs it."""

from __future__ import annotations

import io
import json
import logging

from bot.logs import JsonFormatter, RedactSecrets
from bot.models import JobState
from tests.harness.worlds import TOKEN, World


async def test_every_line_a_job_logs_carries_its_ids(world: World) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecrets([TOKEN]))
    engine = logging.getLogger("bot")
    engine.addHandler(handler)
    level = engine.level
    engine.setLevel(logging.INFO)
    try:
        await world.animate(world.alice)
        job = await world.wait_for((await world.only_job()).id, JobState.DELIVERED)
    finally:
        engine.removeHandler(handler)
        engine.setLevel(level)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    # The state machine's lines, its delivery's among them.
    machine = ("bot.jobs.machine", "bot.jobs.handover", "bot.jobs.endings")
    ran = [line for line in lines if line["logger"] in machine]
    assert ran, "the job logged nothing"
    assert all(
        (line.get("job_id"), line.get("guild_id")) == (job.id, world.channel.guild_id)
        for line in ran
    )
    [submitted] = [line for line in ran if "submitted as request" in line["message"]]
    assert submitted["request_id"] == job.request_id
    [delivered] = [line for line in ran if line["message"] == f"job {job.id} delivered"]
    assert delivered["request_id"] == job.request_id
    # Admission runs in the member's interaction, before there is a job task.
    accepted = [line for line in lines if line["logger"] == "bot.admission"]
    assert accepted and all("job_id" not in line for line in accepted)
    assert TOKEN not in out.getvalue()
