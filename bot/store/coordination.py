"""What the processes sharing one database tell each other, and the provider's shared slots.

Signals are short wake-ups (a topic and a line of text): "a provider slot may be free", "a
job was handed back", "stop running this job", "the video service is failing". On PostgreSQL
they travel by LISTEN/NOTIFY to every process on the database, the sender included, and are
sent only when the transaction that made the change commits; with SQLite (one process) they
are delivered inside the process. A signal can be lost (a listening connection that dropped),
so whoever waits for one also looks again now and then on its own.

Provider slots are PostgreSQL's alone: the cap on jobs at the provider and its fair line hold
across every process there. One SQLite process keeps its line in memory
(:class:`~bot.jobs.slots.FairQueue`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = ["ProviderSlots", "SignalHandler", "Signals", "SlotRound"]

SignalHandler = Callable[[str, str], None]
"""Called with (topic, text) for every signal heard; must not block."""


class Signals(Protocol):
    """Wake-ups between the processes on one database."""

    async def send_signal(self, topic: str, text: str = "") -> None:
        """Tell every process on the database (this one included)."""
        ...

    async def listen(self, handler: SignalHandler) -> None:
        """Call ``handler`` for every signal from now on (a topic ``resync`` after a lost
        connection came back: signals may have been missed meanwhile)."""
        ...


@dataclass(frozen=True)
class SlotRound:
    """What one turn at the provider's slots gave a process."""

    granted: tuple[int, ...]
    """This process's waiting jobs that hold a slot from now on."""
    gone: tuple[int, ...]
    """This process's waiting jobs that no longer wait: ended, or run by another process."""
    order: tuple[int, ...]
    """Every job still waiting, across all processes, in the order they will get a slot."""
    in_use: int
    """Slots held across all processes after this turn."""


@runtime_checkable
class ProviderSlots(Protocol):
    """The provider's slots shared by every process on one database.

    A job occupies a slot while it is at the provider (submitting, queued, running, being
    delivered, or of unknown submission) whoever runs it, and from the moment its process was
    granted one until it is sent, as long as that process keeps the job's lease: a process that
    dies frees the slots of the jobs it had not sent yet when their leases run out.
    """

    async def ask_slot(
        self, job_id: int, guild_id: int, member_id: int, *, owner: str, now: datetime
    ) -> None:
        """Put an accepted job in the line for a slot (a job taken over keeps its place)."""
        ...

    async def grant_slots(self, owner: str, *, capacity: int, now: datetime) -> SlotRound:
        """Give ``owner``'s waiting jobs the slots free for them, in the fair order: round-robin
        across servers, then across a server's members, oldest first within a member."""
        ...

    async def give_slot(self, job_id: int, *, owner: str) -> None:
        """Take the job out of the line, or give back its slot (and wake the others)."""
        ...
