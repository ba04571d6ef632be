"""The provider's cap and fair line shared by every process on one PostgreSQL database.

The same contract as :class:`~bot.jobs.slots.FairQueue` for a job's run, with the line kept in
the store (:class:`~bot.store.coordination.ProviderSlots`): a job asks for a slot, and one
background turn at a time grants this process's waiting jobs the slots free for them in the
fair order across all processes. A turn runs when a job of this process starts waiting, when
another process signals that a slot came free, and every few seconds while jobs wait here
(a signal can be lost). A job that stops waiting without a slot (cancelled by another
process, or taken over) is let go at the next turn; its run then finds it cannot be sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from bot.store.coordination import ProviderSlots
from bot.tasks import TaskSet

__all__ = ["SharedSlots"]

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0
"""While jobs wait here, the longest time between two turns without a signal."""


class SharedSlots:
    """At most ``capacity`` jobs at the provider across every process on the database."""

    def __init__(
        self,
        store: ProviderSlots,
        *,
        capacity: int,
        owner: str,
        clock: Callable[[], datetime],
        on_change: Callable[[], None] | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"the provider's cap must be at least 1, got {capacity}")
        self._store = store
        self._capacity = capacity
        self._owner = owner
        self._clock = clock
        self._on_change = on_change
        self._poll = poll_seconds
        self._holders: set[int] = set()
        self._rows: set[int] = set()
        """Jobs of this process with a row in the line (waiting, or granted through it)."""
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._positions: dict[int, int] = {}
        self._in_use = 0
        self._wake = asyncio.Event()
        self._tasks = TaskSet()
        self._turns: asyncio.Task[None] | None = None

    # -- state ----------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """How many jobs may be at the provider at once, across every process."""
        return self._capacity

    @property
    def running(self) -> int:
        """Slots in use across every process, as the last turn counted them."""
        return self._in_use

    @property
    def held(self) -> int:
        """Jobs of this process holding a slot."""
        return len(self._holders)

    @property
    def waiting(self) -> int:
        """Jobs of this process waiting for a slot."""
        return len(self._waiting)

    def holds_slot(self, job_id: int) -> bool:
        """True while ``job_id`` holds a slot here."""
        return job_id in self._holders

    def is_waiting(self, job_id: int) -> bool:
        """True while ``job_id`` waits here for a slot."""
        return job_id in self._waiting

    def positions(self) -> dict[int, int]:
        """This process's waiting jobs and their places in the shared line (1 = next)."""
        return dict(self._positions)

    def position(self, job_id: int) -> int | None:
        """The job's place in the shared line, or None when it does not wait here (or no
        turn has placed it yet)."""
        return self._positions.get(job_id)

    # -- taking and giving back slots -----------------------------------------------------

    def wake(self) -> None:
        """A slot may have come free: take a turn now (if jobs wait here)."""
        self._wake.set()

    async def acquire(self, guild_id: int, member_id: int, job_id: int) -> None:
        """Wait for a slot for ``job_id``; return once it holds one, or once it no longer
        waits for one (then its run finds it cannot be sent).

        Cancelling the caller takes the job out of the line (or gives back a slot it was
        just granted).
        """
        if job_id in self._holders or job_id in self._waiting:
            raise ValueError(f"job {job_id} already holds or waits for a provider slot")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[job_id] = future
        try:
            await self._store.ask_slot(
                job_id, guild_id, member_id, owner=self._owner, now=self._clock()
            )
            self._rows.add(job_id)
            self._start_turns()
            self._wake.set()
            await future
        except BaseException:
            self._waiting.pop(job_id, None)
            if self._positions.pop(job_id, None) is not None:
                self._changed()
            self.release(job_id)
            raise

    def admit_now(self, guild_id: int, member_id: int, job_id: int) -> None:
        """A job already at the provider: its state counts it in every process's turn."""
        if job_id in self._holders or job_id in self._waiting:
            raise ValueError(f"job {job_id} already holds or waits for a provider slot")
        self._holders.add(job_id)

    def release(self, job_id: int) -> bool:
        """Give back the slot of ``job_id`` (or its place in line); True if it held one."""
        held = job_id in self._holders
        self._holders.discard(job_id)
        if job_id in self._rows:
            self._rows.discard(job_id)
            self._tasks.create(self._give_back(job_id), name=f"job-{job_id}-slot")
        return held

    async def close(self) -> None:
        """Stop taking turns; the rows left behind stop counting once the leases go."""
        await self._tasks.cancel_all()
        self._turns = None

    # -- internals ------------------------------------------------------------------------

    async def _give_back(self, job_id: int) -> None:
        try:
            await self._store.give_slot(job_id, owner=self._owner)
        except Exception as exc:
            # Left in the line, the row stops counting once the job is sent or handed back.
            log.warning("job %d: could not give back its provider slot: %s", job_id, exc)

    def _start_turns(self) -> None:
        if self._turns is None or self._turns.done():
            self._turns = self._tasks.create(self._take_turns(), name="provider-slots")

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    async def _take_turns(self) -> None:
        while True:
            if self._waiting:
                try:
                    async with asyncio.timeout(self._poll):
                        await self._wake.wait()
                except TimeoutError:
                    pass
            else:
                await self._wake.wait()
            self._wake.clear()
            if not self._waiting:
                continue
            try:
                turn = await self._store.grant_slots(
                    self._owner, capacity=self._capacity, now=self._clock()
                )
            except Exception as exc:
                log.warning("a turn at the provider's slots failed (%s); trying again", exc)
                continue
            self._in_use = turn.in_use
            for job_id in turn.granted:
                future = self._waiting.pop(job_id, None)
                if future is None or future.done():
                    # Its run stopped waiting meanwhile: pass the slot on.
                    self._tasks.create(self._give_back(job_id), name=f"job-{job_id}-slot")
                    continue
                self._holders.add(job_id)
                future.set_result(None)
            for job_id in turn.gone:
                self._rows.discard(job_id)
                future = self._waiting.pop(job_id, None)
                if future is not None and not future.done():
                    log.info("job %d no longer waits for a provider slot here", job_id)
                    future.set_result(None)
            positions = {
                job_id: place
                for place, job_id in enumerate(turn.order, start=1)
                if job_id in self._waiting
            }
            if positions != self._positions or turn.granted or turn.gone:
                self._positions = positions
                self._changed()
