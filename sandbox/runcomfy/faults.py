"""Scripted misbehaviour of the emulator's routes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Route = Literal["submit", "status", "result", "cancel", "model", "video", "asset"]
FaultKind = Literal["http", "error_code", "json", "drop", "hang"]


@dataclass
class Fault:
    """One scripted misbehaviour of a route, used up after ``times`` requests.

    Kinds: ``http`` answers ``status`` with an error body (``error_code``/``message``
    default to the documented ones) and ``headers`` such as Retry-After; ``error_code``
    answers HTTP 200 with an error body; ``json`` answers ``status`` with ``body`` verbatim;
    ``drop`` closes the connection without answering; ``hang`` stalls for ``seconds`` and
    then handles the request normally (so a hung submit still creates the job).
    """

    route: Route
    kind: FaultKind
    times: int = 1
    status: int = 500
    error_code: int | None = None
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    seconds: float = 60.0


class Faults:
    """The scripted faults, consumed first come first served per route."""

    def __init__(self) -> None:
        self._pending: list[Fault] = []

    def add(
        self,
        *,
        route: Route,
        kind: FaultKind,
        times: int = 1,
        status: int | None = None,
        error_code: int | None = None,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        seconds: float = 60.0,
    ) -> Fault:
        """Make the next ``times`` requests to ``route`` misbehave as ``kind``."""
        if route not in get_args(Route):
            raise ValueError(f"unknown route {route!r}")
        if kind not in get_args(FaultKind):
            raise ValueError(f"unknown fault kind {kind!r}")
        if times < 1:
            raise ValueError("times must be at least 1")
        if kind == "error_code" and error_code is None:
            raise ValueError("an error_code fault needs error_code")
        default_status = 200 if kind in ("error_code", "json") else 500
        fault = Fault(
            route=route,
            kind=kind,
            times=times,
            status=default_status if status is None else status,
            error_code=error_code,
            message=message,
            headers=dict(headers or {}),
            body=body,
            seconds=seconds,
        )
        self._pending.append(fault)
        return fault

    def take(self, route: Route) -> Fault | None:
        """The fault that applies to this request to ``route``, if any, using one of its times."""
        for fault in self._pending:
            if fault.route == route:
                fault.times -= 1
                if fault.times == 0:
                    self._pending.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self._pending.clear()

    def __len__(self) -> int:
        return len(self._pending)
