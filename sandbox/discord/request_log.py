"""Every request the emulator answered, for the tests' "Discord saw nothing wrong" checks."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RequestRecord:
    """One request the emulator answered."""

    method: str
    route: str
    path: str
    status: int
    code: int | None
    at: float
    """When it was answered (POSIX seconds)."""
    received: float | None = None
    """When it reached the emulator, before its body was read: ``at - received`` is the upload
    and the handling together."""


@dataclass
class RequestLog:
    """Every request, and those to routes the emulator does not know."""

    records: list[RequestRecord] = field(default_factory=list)
    unknown: list[RequestRecord] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)

    def add(self, record: RequestRecord) -> None:
        """Record a request."""
        self.records.append(record)

    def count(self, method: str | None = None, route: str | None = None) -> int:
        """How many requests matched a method and/or a route template."""
        return sum(
            1
            for r in self.records
            if (method is None or r.method == method.upper())
            and (route is None or r.route == route)
        )
