"""What every step of a job's run shares: the store, the provider, the slots, the clock, and
ending a job that did not deliver; see `bot.jobs.machine.JobMachine`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import aiohttp

from bot.config import Config
from bot.jobs.critical import CriticalSections
from bot.jobs.history import RecentRuns
from bot.jobs.notify import JobNotifier, Notify
from bot.jobs.polling import PollPlan
from bot.jobs.slots import SlotQueue
from bot.models import JobRecord, JobState
from bot.runcomfy.client import RunComfyClient, Submission
from bot.store.protocol import Store

log = logging.getLogger(__name__)


class MachineCore:
    """The state of `bot.jobs.machine.JobMachine` and the steps every part of it takes."""

    def __init__(
        self,
        *,
        config: Config,
        store: Store,
        provider: RunComfyClient,
        http: aiohttp.ClientSession,
        queue: SlotQueue,
        clock: Callable[[], datetime],
        notify: Notify,
        owner: str,
    ) -> None:
        self.owner = owner
        """This process's identity in the jobs' leases: every write of the run names it."""
        self.closing = False
        """Set on a graceful stop: no new submit starts."""
        self._critical = CriticalSections()
        self._config = config
        self._store = store
        self._provider = provider
        self._http = http
        self._queue = queue
        self._clock = clock
        self._notify = notify
        self.runs = RecentRuns(store.recent_run_seconds)
        """The expected generation time of each setting, shared by every job."""
        self._poll_plan = PollPlan(
            floor=min(1.0, config.runcomfy.poll_interval),
            ceiling=max(config.runcomfy.poll_interval * 3, 1.0),
        )

    async def calm(self, grace: float) -> None:
        """Wait (up to ``grace`` seconds) until no submit or post is under way."""
        await self._critical.calm(grace)

    def submission(self, job: JobRecord) -> Submission:
        assert job.request_id is not None
        return self._provider.submission_for(
            job.request_id,
            status_url=job.status_url,
            result_url=job.result_url,
            cancel_url=job.cancel_url,
        )

    def _deadline(self, job: JobRecord) -> float:
        """The job's deadline on the event loop's clock."""
        ends = job.created_at + timedelta(seconds=self._config.runcomfy.job_deadline)
        left = (ends - self._clock()).total_seconds()
        return asyncio.get_running_loop().time() + left

    async def end(
        self,
        job_id: int,
        state: JobState,
        reason: str,
        notifier: JobNotifier | None,
        *,
        owned: bool = True,
    ) -> None:
        """End a job that did not deliver and release its credits; ``owned=False`` for an
        ending decided outside the run (a cancel), which holds whatever the lease."""
        changed = await self._store.finish_failed(
            job_id, state, error=reason, now=self._clock(), owner=self.owner if owned else None
        )
        if changed:
            log.info("job %d ended %s: %s", job_id, state.value, reason)
            await self._notify(job_id, notifier)
