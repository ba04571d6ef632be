"""The per-channel pacer keeps posting after a caller stopped waiting for its post."""

from __future__ import annotations

import asyncio

from bot.tasks import TaskSet
from cogs.animate.pacer import ChannelPacer


async def test_a_post_that_fails_after_its_caller_left_does_not_stop_the_channel() -> None:
    tasks = TaskSet()
    pacer = ChannelPacer(tasks)
    started = asyncio.Event()
    refuse = asyncio.Event()

    async def refused_post() -> int:
        started.set()
        await refuse.wait()
        raise RuntimeError("Discord refused the post")

    async def post() -> int:
        return 42

    # A job's run waits for its post, then is stopped (its job ended in another process);
    # meanwhile the next job's post in the same channel queues behind it.
    waiting = asyncio.create_task(pacer.run("job-1", refused_post))
    await started.wait()
    waiting.cancel()
    following = asyncio.create_task(pacer.run("job-2", post))
    await asyncio.sleep(0)
    refuse.set()
    # The refused post, nobody waiting for it any more, does not stop the channel.
    assert await asyncio.wait_for(following, 5) == 42
    await tasks.cancel_all()
