"""What every benchmark shares: reports (tables and targets), percentiles, memory, loop lag.

A benchmark's `measure(quick, seed)` returns one `Report`; `python -m bench` runs it several
times and shows the median of every number across the runs.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Cell = str | int | float | None
Op = Literal["<", "<=", "==", ">=", ">"]

MIB = 1024 * 1024


@dataclass
class Table:
    """One printed table; numeric cells are combined across runs by their median."""

    title: str
    columns: list[str]
    rows: list[list[Cell]]
    note: str = ""


@dataclass
class Check:
    """A target from the issue: `value op limit`, e.g. ack p99 < 100 ms."""

    name: str
    value: float
    op: Op
    limit: float
    unit: str = ""

    @property
    def met(self) -> bool:
        if math.isnan(self.value):
            return False
        match self.op:
            case "<":
                return self.value < self.limit
            case "<=":
                return self.value <= self.limit
            case "==":
                return self.value == self.limit
            case ">=":
                return self.value >= self.limit
            case ">":
                return self.value > self.limit


@dataclass
class Report:
    tables: list[Table]
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- numbers -----------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (numpy's default); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def ms(seconds: float) -> float:
    return seconds * 1000


# -- memory and the event loop --------------------------------------------------------------


def peak_rss() -> int:
    """The process's peak resident set size in bytes (since it started, or since a reset).

    Linux's VmHWM is used rather than getrusage's ru_maxrss: ru_maxrss survives exec, so a
    freshly spawned process would report its parent's peak, and it cannot be reset.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return int(peak if sys.platform == "darwin" else peak * 1024)


def reset_peak_rss() -> bool:
    """Make the peak RSS start again from the current RSS (Linux only); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def current_rss() -> int:
    """The resident set size right now, in bytes (the peak on systems without /proc)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
    except OSError:
        return peak_rss()
    return pages * os.sysconf("SC_PAGE_SIZE")


class LagSampler:
    """Measures event-loop lag: how late a task wakes from a short sleep.

    Every `interval` seconds it sleeps and records the oversleep; a loop blocked by a slow
    callback shows up as a late wake-up. `mark()` starts a new phase.
    """

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self.stamps: list[float] = []
        """When each sample was taken (POSIX seconds, at the late wake-up)."""
        self.phases: list[tuple[str, int]] = [("start", 0)]
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="lag-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def mark(self, name: str) -> None:
        self.phases.append((name, len(self.samples)))

    def phase(self, name: str) -> list[float]:
        """The samples of one phase (from its mark to the next)."""
        bounds = [*self.phases, ("end", len(self.samples))]
        for (label, start), (_next, stop) in itertools.pairwise(bounds):
            if label == name:
                return self.samples[start:stop]
        return []

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            self.samples.append(max(0.0, loop.time() - before - self.interval))
            self.stamps.append(time.time())


# -- the machine ---------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = math.nan
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    memory = int(line.split()[1]) * 1024 / 1024**3
                    break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory, 1),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def describe_machine(info: dict[str, Any]) -> str:
    return (
        f"{info['cpus']} x {info['cpu_model']}, {info['memory_gib']} GiB RAM, "
        f"Python {info['python']}, {info['system']}"
    )


# -- combining runs -------------------------------------------------------------------------


def _median_cell(cells: list[Cell]) -> Cell:
    numbers = [c for c in cells if isinstance(c, int | float) and not isinstance(c, bool)]
    if len(numbers) != len(cells):
        return cells[0]
    finite = [float(c) for c in numbers if not math.isnan(float(c))]
    if not finite:
        return math.nan
    value = statistics.median(finite)
    if all(isinstance(c, int) for c in numbers) and value == int(value):
        return int(value)
    return value


def combine(reports: list[Report]) -> Report:
    """One report whose every number is the median of that number over the runs."""
    first = reports[0]
    tables = []
    for index, table in enumerate(first.tables):
        # Rows are matched by their label (first cell): runs may list different rows, e.g.
        # the faults that happened to be injected; a row missing from a run is left out of
        # that row's median.
        shapes = {tuple(row[0] for row in rep.tables[index].rows) for rep in reports}
        if len(shapes) == 1:
            rows = [
                [_median_cell([rep.tables[index].rows[r][c] for rep in reports]) for c in range(n)]
                for r, n in enumerate(len(row) for row in table.rows)
            ]
            tables.append(Table(table.title, table.columns, rows, table.note))
            continue
        labels: dict[Any, None] = {}
        for rep in reports:
            labels.update(dict.fromkeys(row[0] for row in rep.tables[index].rows))
        rows = []
        for label in labels:
            found = [
                next((row for row in rep.tables[index].rows if row[0] == label), None)
                for rep in reports
            ]
            present = [row for row in found if row is not None]
            rows.append(
                [label]
                + [_median_cell([row[c] for row in present]) for c in range(1, len(present[0]))]
            )
        tables.append(Table(table.title, table.columns, rows, table.note))
    checks = []
    for index, check in enumerate(first.checks):
        values = [rep.checks[index].value for rep in reports]
        finite = [v for v in values if not math.isnan(v)]
        value = statistics.median(finite) if len(finite) == len(values) else math.nan
        checks.append(Check(check.name, value, check.op, check.limit, check.unit))
    notes = list(dict.fromkeys(note for rep in reports for note in rep.notes))
    return Report(tables, checks, notes)


# -- showing them ---------------------------------------------------------------------------


def format_cell(value: Cell) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        magnitude = abs(value)
        if magnitude >= 100:
            return f"{value:,.0f}"
        if magnitude >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return value


def render_table(table: Table) -> str:
    head = f"**{table.title}**\n\n"
    lines = [
        "| " + " | ".join(table.columns) + " |",
        "|" + "|".join("---" for _ in table.columns) + "|",
    ]
    lines += ["| " + " | ".join(format_cell(c) for c in row) + " |" for row in table.rows]
    note = f"\n\n{table.note}" if table.note else ""
    return head + "\n".join(lines) + note


def render_check(check: Check) -> str:
    mark = "met" if check.met else "MISSED"
    unit = f" {check.unit}" if check.unit else ""
    return (
        f"- [{mark}] {check.name}: {format_cell(check.value)}{unit} "
        f"(target {check.op} {format_cell(check.limit)}{unit})"
    )


def render(name: str, report: Report, *, runs: int, info: dict[str, Any]) -> str:
    parts = [
        f"## {name}",
        f"Machine: {describe_machine(info)}. "
        + (f"Medians of {runs} runs." if runs > 1 else "One run."),
    ]
    parts += [render_table(t) for t in report.tables]
    if report.checks:
        parts.append("Targets:\n" + "\n".join(render_check(c) for c in report.checks))
    if report.notes:
        parts.append("\n".join(f"- {n}" for n in report.notes))
    return "\n\n".join(parts) + "\n"


def to_json(
    name: str, report: Report, *, runs: int, quick: bool, info: dict[str, Any], each: list[Report]
) -> dict[str, Any]:
    def checks(rep: Report) -> list[dict[str, Any]]:
        return [{**asdict(c), "met": c.met} for c in rep.checks]

    def tables(rep: Report) -> list[dict[str, Any]]:
        return [
            {
                "title": t.title,
                "columns": t.columns,
                "rows": [dict(zip(t.columns, row, strict=True)) for row in t.rows],
            }
            for t in rep.tables
        ]

    return {
        "benchmark": name,
        "runs": runs,
        "quick": quick,
        "machine": info,
        "tables": tables(report),
        "checks": checks(report),
        "notes": report.notes,
        "each_run": [{"tables": tables(r), "checks": checks(r)} for r in each],
    }


Measure = Callable[[bool, int], Report]
