"""Benchmarks: how fast, how light, how many at once (`python -m bench <name>`).

Each benchmark is one module with a `measure(quick, seed) -> Report` function, a `TITLE`
and a `DEFAULT_RUNS`; see BENCHMARKS.md for the figures and the commands that made them.
"""

BENCHMARKS = (
    "polling",
    "ack",
    "capacity",
    "scale",
    "frames",
    "store",
    "relay",
    "abuse",
    "chaos",
    "chaos_pg",
)
