"""A global cap on jobs at the provider, with a fair local queue beyond it. Pure asyncio, no I/O.

Slots are handed out round-robin across servers, then round-robin across the members of a
server, so a busy server (or a busy member) cannot starve the others: with servers A (three
members waiting), B and C (one each), the order is A1, B, C, A2, A3 — never A1, A2, A3, B, C.
Within one member, jobs keep their arrival order.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

__all__ = ["FairQueue", "SlotQueue"]

log = logging.getLogger(__name__)


class SlotQueue(Protocol):
    """The provider's cap and its fair line, as a job's run uses it: this process's
    :class:`FairQueue`, or the line shared by every process on one PostgreSQL database
    (:class:`~bot.jobs.shared_slots.SharedSlots`)."""

    @property
    def capacity(self) -> int:
        """How many jobs may be at the provider at once."""
        ...

    @property
    def running(self) -> int:
        """Jobs holding a slot (as last seen, for a shared line)."""
        ...

    @property
    def held(self) -> int:
        """Jobs of this process holding a slot."""
        ...

    @property
    def waiting(self) -> int:
        """Jobs of this process waiting for a slot."""
        ...

    async def acquire(self, guild_id: int, member_id: int, job_id: int) -> None:
        """Wait for a slot for ``job_id``; return once it holds one."""
        ...

    def admit_now(self, guild_id: int, member_id: int, job_id: int) -> None:
        """Count a job already at the provider as holding a slot, without waiting."""
        ...

    def release(self, job_id: int) -> bool:
        """Give back the slot of ``job_id`` (or leave the line); True if it held one."""
        ...

    def is_waiting(self, job_id: int) -> bool:
        """Whether ``job_id`` waits in this process for a slot."""
        ...

    def position(self, job_id: int) -> int | None:
        """The job's place in line (1 = next), or None when it is not waiting."""
        ...

    def positions(self) -> dict[int, int]:
        """Every job of this process waiting, with its place in line."""
        ...


@dataclass(frozen=True, eq=False)
class _Waiter:
    job_id: int
    guild_id: int
    member_id: int
    future: asyncio.Future[None]


# guild -> member -> that member's waiters; dict order is the round-robin order.
_Rotation = OrderedDict[int, OrderedDict[int, deque[_Waiter]]]


class FairQueue:
    """At most ``capacity`` jobs hold a slot at once; the rest wait their fair turn.

    Use ``async with queue.slot(guild_id, member_id, job_id):`` around the part of a job that
    occupies the provider, or :meth:`acquire` and :meth:`release`. A waiter that is cancelled
    leaves the queue, and a slot handed to a waiter that was cancelled at that very moment is
    passed on, so no slot is ever lost. ``on_change`` is called (synchronously) whenever the
    waiting order may have changed, so waiting jobs can refresh their "waiting, #N" line.
    """

    def __init__(self, capacity: int, *, on_change: Callable[[], None] | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"a FairQueue needs a capacity of at least 1, got {capacity}")
        self._capacity = capacity
        self._on_change = on_change
        self._holders: dict[int, tuple[int, int]] = {}
        self._waiters: dict[int, _Waiter] = {}
        self._rotation: _Rotation = OrderedDict()

    # -- state ----------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """How many jobs may hold a slot at once."""
        return self._capacity

    def set_capacity(self, capacity: int) -> None:
        """Change the cap at run time; a larger cap admits waiters at once."""
        if capacity < 1:
            raise ValueError(f"a FairQueue needs a capacity of at least 1, got {capacity}")
        self._capacity = capacity
        self._admit()

    @property
    def running(self) -> int:
        """Jobs holding a slot (may briefly exceed the capacity after :meth:`admit_now`)."""
        return len(self._holders)

    @property
    def held(self) -> int:
        """Jobs holding a slot: all of them are this process's."""
        return len(self._holders)

    @property
    def waiting(self) -> int:
        """Jobs waiting for a slot."""
        return len(self._waiters)

    def holds_slot(self, job_id: int) -> bool:
        """True while ``job_id`` holds a slot."""
        return job_id in self._holders

    def is_waiting(self, job_id: int) -> bool:
        """True while ``job_id`` waits for a slot."""
        waiter = self._waiters.get(job_id)
        return waiter is not None and not waiter.future.done()

    def order(self) -> list[int]:
        """Waiting job ids in the order they will get a slot if nobody else arrives."""
        rotation: _Rotation = OrderedDict(
            (guild, OrderedDict((member, deque(queue)) for member, queue in members.items()))
            for guild, members in self._rotation.items()
        )
        ordered: list[int] = []
        while rotation:
            waiter = self._pop_next(rotation)
            if not waiter.future.done():
                ordered.append(waiter.job_id)
        return ordered

    def positions(self) -> dict[int, int]:
        """Every waiting job's place in line, 1 for the next one to run."""
        return {job_id: place for place, job_id in enumerate(self.order(), start=1)}

    def position(self, job_id: int) -> int | None:
        """The job's place in line (1 = next), or None when it is not waiting."""
        return self.positions().get(job_id)

    # -- taking and giving back slots -----------------------------------------------------

    async def acquire(self, guild_id: int, member_id: int, job_id: int) -> None:
        """Wait for a slot for ``job_id``; return once it holds one.

        Raises ``ValueError`` if the job already holds or waits for a slot. Cancelling the
        caller removes it from the queue (or gives back a slot it was just handed).
        """
        self._check_new(job_id)
        if not self._waiters and len(self._holders) < self._capacity:
            self._holders[job_id] = (guild_id, member_id)
            return
        waiter = _Waiter(job_id, guild_id, member_id, asyncio.get_running_loop().create_future())
        self._waiters[job_id] = waiter
        guild = self._rotation.setdefault(guild_id, OrderedDict())
        guild.setdefault(member_id, deque()).append(waiter)
        log.debug("job %d waits for a provider slot (guild %d)", job_id, guild_id)
        self._changed()
        try:
            await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                # The slot was handed over just as the caller was cancelled: pass it on.
                self.release(job_id)
            else:
                self._withdraw(waiter)
            raise

    def admit_now(self, guild_id: int, member_id: int, job_id: int) -> None:
        """Give ``job_id`` a slot without waiting, even beyond the capacity.

        For jobs that are already at the provider when the bot starts: they occupy it
        whatever the queue says, and new jobs wait until the count is back under the cap.
        """
        self._check_new(job_id)
        self._holders[job_id] = (guild_id, member_id)

    def release(self, job_id: int) -> bool:
        """Give back the slot of ``job_id``; True if it held one. The next waiter gets it."""
        if self._holders.pop(job_id, None) is None:
            return False
        self._admit()
        return True

    @asynccontextmanager
    async def slot(self, guild_id: int, member_id: int, job_id: int) -> AsyncIterator[None]:
        """Hold a slot for the body of the ``async with``; released however the body ends."""
        await self.acquire(guild_id, member_id, job_id)
        try:
            yield
        finally:
            self.release(job_id)

    # -- internals ------------------------------------------------------------------------

    def _check_new(self, job_id: int) -> None:
        if job_id in self._holders or job_id in self._waiters:
            raise ValueError(f"job {job_id} already holds or waits for a provider slot")

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    @staticmethod
    def _pop_next(rotation: _Rotation) -> _Waiter:
        """Take the next waiter: first server in turn, its first member in turn; rotate both."""
        guild_id, members = next(iter(rotation.items()))
        member_id, queue = next(iter(members.items()))
        waiter = queue.popleft()
        members.move_to_end(member_id)
        if not queue:
            del members[member_id]
        rotation.move_to_end(guild_id)
        if not members:
            del rotation[guild_id]
        return waiter

    def _admit(self) -> None:
        admitted = False
        while self._rotation and len(self._holders) < self._capacity:
            waiter = self._pop_next(self._rotation)
            del self._waiters[waiter.job_id]
            if waiter.future.done():
                # Cancelled while queued; its task has not resumed yet to withdraw itself.
                continue
            self._holders[waiter.job_id] = (waiter.guild_id, waiter.member_id)
            waiter.future.set_result(None)
            admitted = True
            log.debug("job %d got a provider slot", waiter.job_id)
        if admitted:
            self._changed()

    def _withdraw(self, waiter: _Waiter) -> None:
        self._waiters.pop(waiter.job_id, None)
        members = self._rotation.get(waiter.guild_id)
        if members is None:
            return
        queue = members.get(waiter.member_id)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del members[waiter.member_id]
                if not members:
                    del self._rotation[waiter.guild_id]
        self._changed()
