"""The channel pacers and the bot-wide budget: Discord's limits held, the urgent sent first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bot.ops.discord_budget import RequestBudget
from bot.tasks import TaskSet
from cogs.animate.pacer import STALE_AFTER, ChannelPacer, Priority


@pytest.fixture
async def tasks() -> AsyncIterator[TaskSet]:
    owned = TaskSet()
    yield owned
    await owned.cancel_all()


class Sent:
    """What reached "Discord", in order, and when (loop time)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.times: list[float] = []

    def action(self, name: str) -> Callable[[], Awaitable[str]]:
        async def send() -> str:
            self.names.append(name)
            self.times.append(asyncio.get_running_loop().time())
            return name

        return send

    async def until(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.names) < count:  # noqa: ASYNC110 - watching what was sent
                await asyncio.sleep(0.005)


def most_in_window(times: list[float], window: float) -> int:
    ordered = sorted(times)
    return max(
        sum(1 for later in ordered[i:] if later - start < window) for i, start in enumerate(ordered)
    )


async def test_many_channels_together_stay_within_the_bot_wide_budget(tasks: TaskSet) -> None:
    budget = RequestBudget(rate=4, window=0.2)
    sent = Sent()
    pacers = [ChannelPacer(tasks, budget=budget, rate=100, window=1.0) for _ in range(6)]
    for channel, pacer in enumerate(pacers):
        for job in range(3):
            pacer.submit((channel, job), sent.action(f"{channel}/{job}"), priority=Priority.CHANGE)
    await sent.until(18)
    # Every channel's edit went out, 4 per 0.2 s across all of them. Counted over half a
    # window: a busy machine may run one grant's sends late, next to the following grant's.
    # Without the shared budget all 18 leave at once.
    assert sorted(sent.names) == sorted(f"{c}/{j}" for c in range(6) for j in range(3))
    assert most_in_window(sent.times, 0.1) <= 4


async def test_one_channel_stays_within_its_own_budget(tasks: TaskSet) -> None:
    sent = Sent()
    pacer = ChannelPacer(tasks, budget=RequestBudget(rate=1000), rate=2, window=0.2)
    for job in range(6):
        pacer.submit(("status", job), sent.action(f"job {job}"), priority=Priority.CHANGE)
    await sent.until(6)
    assert most_in_window(sent.times, 0.2) <= 2


async def test_a_final_state_in_one_channel_goes_before_progress_in_others(
    tasks: TaskSet,
) -> None:
    budget = RequestBudget(rate=1, window=0.05)
    sent = Sent()
    quiet = [ChannelPacer(tasks, budget=budget) for _ in range(4)]
    for channel, pacer in enumerate(quiet):
        pacer.submit(
            ("status", channel), sent.action(f"progress {channel}"), priority=Priority.PROGRESS
        )
    await sent.until(1)  # the first one had the budget to itself
    busy = ChannelPacer(tasks, budget=budget)
    busy.submit(("status", 99), sent.action("final"), priority=Priority.FINAL)
    await sent.until(5)
    assert sent.names[1] == "final"


async def test_a_channel_waiting_with_progress_lets_its_own_final_state_ahead(
    tasks: TaskSet,
) -> None:
    budget = RequestBudget(rate=1, window=0.05)
    sent = Sent()
    others = [ChannelPacer(tasks, budget=budget) for _ in range(3)]
    mine = ChannelPacer(tasks, budget=budget)
    mine.submit(("status", 1), sent.action("my progress"), priority=Priority.PROGRESS)
    await sent.until(1)
    mine.submit(("status", 2), sent.action("my other progress"), priority=Priority.PROGRESS)
    for channel, pacer in enumerate(others):
        pacer.submit(
            ("status", channel), sent.action(f"change {channel}"), priority=Priority.CHANGE
        )
    await asyncio.sleep(0)
    # My channel's worker waits for the budget at the lowest priority; a final state of one
    # of its jobs arrives and must not wait behind the other channels' changes.
    mine.submit(("status", 3), sent.action("my final"), priority=Priority.FINAL)
    await sent.until(6)
    assert sent.names[1] == "my final"
    assert sent.names[-1] == "my other progress"


async def test_a_job_shows_its_newest_state_as_urgently_as_any_it_replaced(
    tasks: TaskSet,
) -> None:
    budget = RequestBudget(rate=1, window=0.05)
    sent = Sent()
    other = ChannelPacer(tasks, budget=budget)
    mine = ChannelPacer(tasks, budget=budget)
    other.submit("first", sent.action("first"), priority=Priority.CHANGE)
    await sent.until(1)
    other.submit("other change", sent.action("other change"), priority=Priority.CHANGE)
    # The same job: a new state, then a queue position an instant later. The position is
    # newer and is what shows, with the state change's place in line.
    mine.submit(("status", 7), sent.action("running"), priority=Priority.CHANGE)
    mine.submit(("status", 7), sent.action("running, new position"), priority=Priority.PROGRESS)
    other.submit("later progress", sent.action("later progress"), priority=Priority.PROGRESS)
    await sent.until(4)
    assert "running" not in sent.names
    assert sent.names.index("running, new position") < sent.names.index("later progress")


async def test_a_final_state_is_never_replaced(tasks: TaskSet) -> None:
    budget = RequestBudget(rate=1, window=0.05)
    sent = Sent()
    pacer = ChannelPacer(tasks, budget=budget)
    pacer.submit("warm up", sent.action("warm up"), priority=Priority.CHANGE)
    await sent.until(1)
    pacer.submit(("status", 1), sent.action("delivered"), priority=Priority.FINAL)
    pacer.submit(("status", 1), sent.action("late progress"), priority=Priority.PROGRESS)
    await sent.until(2)
    await asyncio.sleep(0.1)
    assert sent.names == ["warm up", "delivered"]


async def test_a_post_returns_its_message_within_the_budget(tasks: TaskSet) -> None:
    budget = RequestBudget(rate=1, window=0.05)
    sent = Sent()
    pacer = ChannelPacer(tasks, budget=budget)
    pacer.submit("edit", sent.action("edit"), priority=Priority.PROGRESS)
    assert await pacer.run(("post", 1), sent.action("video")) == "video"
    assert sent.names == ["edit", "video"]


async def test_a_post_that_fails_after_its_caller_left_does_not_stop_the_channel(
    tasks: TaskSet,
) -> None:
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


async def test_progress_leaves_room_in_the_channel_for_what_matters_more(tasks: TaskSet) -> None:
    sent = Sent()
    pacer = ChannelPacer(tasks, budget=RequestBudget(rate=1000), rate=5, window=5.0, spare=2)
    for job in range(6):
        pacer.submit(("status", job), sent.action(f"progress {job}"), priority=Priority.PROGRESS)
    await sent.until(3)
    await asyncio.sleep(0.05)
    # Queue positions fill three places of the window and leave two.
    assert len(sent.names) == 3
    pacer.submit(("status", 98), sent.action("change"), priority=Priority.CHANGE)
    pacer.submit(("status", 99), sent.action("final"), priority=Priority.FINAL)
    await sent.until(5)
    assert sent.names[3:] == ["final", "change"]


async def test_progress_leaves_room_in_the_bot_wide_budget(tasks: TaskSet) -> None:
    budget = RequestBudget(rate=5, window=5.0)
    sent = Sent()
    pacers = [ChannelPacer(tasks, budget=budget) for _ in range(5)]
    for channel, pacer in enumerate(pacers):
        pacer.submit(
            ("status", channel), sent.action(f"progress {channel}"), priority=Priority.PROGRESS
        )
    await sent.until(4)
    await asyncio.sleep(0.05)
    # A fifth of the bot's budget stays free for a new message or a state change.
    assert len(sent.names) == 4
    news = ChannelPacer(tasks, budget=budget)
    assert await news.run(("post", 1), sent.action("a video")) == "a video"
    assert sent.names[4] == "a video"


async def test_a_state_change_is_not_held_behind_a_flood_of_new_posts(tasks: TaskSet) -> None:
    gap = 0.05
    budget = RequestBudget(rate=1, window=gap)
    sent = Sent()
    # Twice as many posts as the budget lets through before the change is overdue.
    flood = round(2 * STALE_AFTER / gap)
    posts = [
        asyncio.ensure_future(
            ChannelPacer(tasks, budget=budget).run(("post", n), sent.action(f"post {n}"))
        )
        for n in range(flood)
    ]
    await sent.until(1)  # the posts all wait for the budget
    mine = ChannelPacer(tasks, budget=budget)
    mine.submit(("status", 1), sent.action("change"), priority=Priority.CHANGE)
    await sent.until(flood + 1)
    await asyncio.gather(*posts)
    # New messages go first, but not for longer than the change may wait.
    assert 0 < sent.names.index("change") < flood
