"""`python -m bench <name>|all [--json] [--runs N] [--quick]`: run benchmarks, print figures."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import sys
import time
from typing import Any

from bench import BENCHMARKS
from bench.common import Report, combine, machine, render, to_json


def _clean(value: Any) -> Any:
    """JSON has no NaN: missing figures become null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def run_one(name: str, *, runs: int | None, quick: bool) -> tuple[Report, list[Report], int]:
    module = importlib.import_module(f"bench.{name}")
    count = runs if runs is not None else (1 if quick else int(module.DEFAULT_RUNS))
    reports = []
    for seed in range(count):
        started = time.monotonic()
        reports.append(module.measure(quick, seed))
        logging.getLogger("bench").info(
            "%s run %d took %.1f s", name, seed + 1, time.monotonic() - started
        )
    return combine(reports), reports, count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("name", choices=[*BENCHMARKS, "all"])
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--runs", type=int, default=None, help="runs to take the median of")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    args = parser.parse_args(argv)
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        # The bot and the emulators log every job at INFO; the figures are the output here.
        logging.getLogger("bench").setLevel(logging.WARNING)
    names = BENCHMARKS if args.name == "all" else (args.name,)
    info = machine()
    results = []
    for name in names:
        report, each, count = run_one(name, runs=args.runs, quick=args.quick)
        if args.json:
            results.append(
                _clean(to_json(name, report, runs=count, quick=args.quick, info=info, each=each))
            )
        else:
            sys.stdout.write(render(name, report, runs=count, info=info) + "\n")
            sys.stdout.flush()
    if args.json:
        sys.stdout.write(json.dumps(results[0] if len(results) == 1 else results, indent=2) + "\n")
    # A missed target is a finding, not a failure of the benchmark: exit 0 either way.
    return 0


if __name__ == "__main__":
    sys.exit(main())
