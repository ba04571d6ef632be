"""Where a run's processor time went, read from Linux's /proc: the machine as a whole, and a
PostgreSQL server with every process it started.

A server's processor time is its postmaster's own, plus that of its live children, plus that
of the children it has already reaped (a connection's backend exits when the connection
closes; its time then moves to the postmaster's ``cutime``/``cstime``). So the difference of
two readings counts whatever the server ran in between: the backends serving connections,
and its own background processes (the WAL writer, autovacuum...).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Machine", "Server", "busy_between", "postmaster_of"]

_TICK = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (the state comes first)."""
    text = (_PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    return text.rsplit(")", 1)[1].split()


@dataclass(frozen=True)
class Machine:
    """Processor time of the whole machine, all cores: (busy, total) clock ticks."""

    busy: int
    total: int

    @classmethod
    def now(cls) -> Machine:
        fields = [int(v) for v in (_PROC / "stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle and waiting for I/O
        return cls(sum(fields) - idle, sum(fields))


def busy_between(before: Machine, after: Machine) -> float:
    """The share of the machine's processor time that was busy between two readings (0-1),
    whoever was busy: this benchmark or anything else running."""
    total = after.total - before.total
    return (after.busy - before.busy) / total if total > 0 else float("nan")


@dataclass(frozen=True)
class Server:
    """A PostgreSQL server's processor time so far, in seconds."""

    seconds: float

    @classmethod
    def now(cls, postmaster: int) -> Server:
        fields = _stat(postmaster)
        seconds = sum(int(v) for v in fields[11:15]) / _TICK  # its own, and reaped children's
        for entry in _PROC.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                child = _stat(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile: its time is the postmaster's now, or soon
            if int(child[1]) == postmaster:
                seconds += (int(child[11]) + int(child[12])) / _TICK
        return cls(seconds)


def postmaster_of(data_dir: Path) -> int:
    """The postmaster's process id, from the first line of its ``postmaster.pid``."""
    return int((data_dir / "postmaster.pid").read_text(encoding="ascii").splitlines()[0])
