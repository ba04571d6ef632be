"""Every benchmark still runs: `python -m bench <name> --quick --json` exits 0 with figures.

The benchmarks themselves are not tests (their targets are findings, reported in
BENCHMARKS.md); this only keeps them working (chaos included: its quick run is 20 jobs,
about 30 s). All of them run at once as subprocesses.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import BENCHMARKS
from bench.__main__ import main
from bench.common import Report, Table, combine

ROOT = Path(__file__).resolve().parents[2]


async def run_quick(name: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench",
        name,
        "--quick",
        "--json",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    # Generous: a quick run takes seconds alone, far longer beside the rest of the suite.
    out, err = await asyncio.wait_for(process.communicate(), timeout=400)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def numbers(report: dict[str, Any]) -> list[float]:
    found = []
    for table in report["tables"]:
        for row in table["rows"]:
            found += [v for v in row.values() if isinstance(v, int | float)]
    return found


@pytest.mark.parametrize("name", list(BENCHMARKS))
async def test_every_benchmark_runs_quickly_and_prints_its_figures(name: str) -> None:
    code, out, err = await run_quick(name)
    assert code == 0, f"{name} failed:\n{err[-3000:]}"
    report = json.loads(out)
    assert report["benchmark"] == name
    assert report["machine"]["cpus"] >= 1
    assert report["tables"], f"{name} printed no table"
    figures = numbers(report)
    assert figures, f"{name} printed no figures"
    assert all(math.isfinite(f) for f in figures)
    assert report["checks"], f"{name} checked no target"
    for check in report["checks"]:
        assert isinstance(check["met"], bool)
        assert check["value"] is not None, f"{name}: {check['name']} was not measured"


def test_the_default_output_is_a_markdown_section() -> None:
    # The cheapest benchmark's text form: a heading, the machine, a table, the targets.
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["store", "--quick"]) == 0
    text = out.getvalue()
    assert text.startswith("## store")
    assert "| callers |" in text
    assert "Targets:" in text


def test_runs_that_list_different_rows_are_combined_by_row_label() -> None:
    # The chaos benchmark lists the faults each run happened to inject: runs differ in rows.
    runs = [
        Report([Table("injected", ["fault", "times"], rows)], [], [])
        for rows in ([["drop", 1], ["stall", 2]], [["drop", 3], ["500", 5]], [["drop", 5]])
    ]
    assert combine(runs).tables[0].rows == [["drop", 3], ["stall", 2], ["500", 5]]
