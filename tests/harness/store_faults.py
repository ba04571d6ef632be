"""Real SQL statements of the store failing inside SQLite, as a locked or full database would.

A trace callback sees each statement as SQLite starts it; when one matches a planned fault,
the progress handler interrupts it, and the store gets SQLite's own ``OperationalError``
from a statement that really ran and really rolled back: no function of ours is replaced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.store.sqlite.inline import Db
from bot.store.sqlite.store import SqliteStore


@dataclass
class _Planned:
    pattern: re.Pattern[str]
    times: int


@dataclass
class StatementFaults:
    """Planned statement failures of one store's connection."""

    planned: list[_Planned] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    """The statements that were made to fail, in order."""
    _armed: bool = False

    @classmethod
    async def install(cls, store: SqliteStore) -> StatementFaults:
        faults = cls()
        # The store's two connections (aiosqlite's, and its own thread's for the hot paths):
        # the faults live inside SQLite itself.
        db = store._db
        await db.set_trace_callback(faults._started)
        await db.set_progress_handler(faults._progress, 1)

        async def plant(inline: Db) -> None:
            # Between the store's transactions' statements.
            raw = store._batches.connection
            raw.set_trace_callback(faults._started)
            raw.set_progress_handler(faults._progress, 1)

        await store._batches.read(plant)
        return faults

    def fail(self, statement: str, times: int = 1) -> None:
        """Make the next ``times`` statements matching the regex ``statement`` fail."""
        self.planned.append(_Planned(re.compile(statement), times))

    def _started(self, sql: str) -> None:
        for plan in self.planned:
            if plan.times > 0 and plan.pattern.search(sql):
                plan.times -= 1
                self.failed.append(sql)
                self._armed = True
                return

    def _progress(self) -> int:
        if self._armed:
            self._armed = False
            return 1  # non-zero: SQLite interrupts the statement
        return 0
