"""Abuse: hostile blocklist rules against the longest prompts, and what the event loop feels.

(b) 50 of the worst regex rules we could write (nested and overlapping quantifiers over
classes a backtracking engine chokes on, Greek and Cyrillic ranges outside any sample,
huge counted repeats, alternations that overlap) against 1,900-character prompts built to
make them work hardest. Matching runs exactly as in production: `find_blocked_rule` (the
prompt folded and skeletonised, every rule tried, in a worker thread) while a ticker task on
the event loop records how late it wakes every millisecond; the longest lateness is the
stall every other server would feel. A second row adds 150 word rules (a full blocklist).

(a), a member with no credits flooding /animate, belongs to the admission work and is not
measured here.
"""

from __future__ import annotations

import asyncio
import random
import time

from bench.common import Check, LagSampler, Report, Table, ms, percentile
from bot.models import BlockRule
from bot.moderation.blocklist import find_blocked_rule, normalize_word
from bot.moderation.regexes import MAX_PROMPT_CHARS, validate_regex

TITLE = "Abuse"
DEFAULT_RUNS = 5

_GREEK = "[\u03b1-\u03c9]"
_CYRILLIC = "[\u0430-\u044f]"
# Each shape is catastrophic (exponential or high-degree polynomial) for a backtracking
# engine on the prompts below; each needs a "~" no prompt has, so every rule scans it all.
_SHAPES = [
    r"(a+)+~",
    r"(a|aa)+~",
    r"(a|a?)+~",
    r"(.*a){12}~",
    r"(\w+\s?)+~$",
    r"(\s*\w+\s*)+~",
    r"^(([a-z])+.)+~([a-z])+$",
    r".*.*.*.*~",
    r"(x+x+)+~",
    r"\w+\w+\w+\w+~",
    f"{_GREEK}+{_GREEK}+{_GREEK}+~",
    f"({_GREEK}+)+~",
    f"{_CYRILLIC}*{_CYRILLIC}*{_CYRILLIC}*{_CYRILLIC}*~",
    f"({_CYRILLIC}|{_CYRILLIC}{_CYRILLIC})+~",
    r"(a{1,12}){1,12}~",
    r"((ab)*|(ba)*)*~",
    r"(\d+\.?)+~",
    r"([^~]+)+~",
    r"(a*)*~",
    r"(?:[\s\S]*?a){20}~",
    r"(a+|b+|ab)+~",
    r"(\p{L}+\s?)+~",
    r"(.{1,8}){1,8}~",
    r"(aa|aab?)+~",
    r"(\w|\d|_)+~",
]


def worst_rules() -> list[BlockRule]:
    """50 distinct hostile regex rules, each vetted as a moderator's would be."""
    patterns = [*_SHAPES, *(f"{shape}|never{n}~" for n, shape in enumerate(_SHAPES))][:50]
    for pattern in patterns:
        validate_regex(pattern)
    return [BlockRule("regex", p, n) for n, p in enumerate(patterns, start=1)]


def word_rules(count: int) -> list[BlockRule]:
    return [
        BlockRule("word", normalize_word(f"forbidden phrase {n}"), 1000 + n) for n in range(count)
    ]


def hostile_prompts(seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    n = MAX_PROMPT_CHARS
    letters = "abcdefghijklmnopqrstuvwxyz \u03b1\u03b2\u0430\u0431\u0301\u200b"
    return {
        "a" * 10: "a" * n,
        "a a a ...": ("a " * n)[:n],
        "Greek run": "\u03b1" * n,
        "Cyrillic run": "\u0430" * n,
        "ab ab ...": ("ab" * n)[:n],
        "zalgo (marks)": ("a\u0301\u0336" * n)[:n],
        "random mix": "".join(rng.choice(letters) for _ in range(n)),
    }


async def _run(
    rules: list[BlockRule], prompts: dict[str, str], repeat: int
) -> tuple[dict[str, float], float, float]:
    """Per prompt: median seconds of one check; the longest event-loop stall; the first call."""
    sampler = LagSampler(interval=0.001)
    sampler.start()
    await asyncio.sleep(0.02)
    started = time.perf_counter()
    assert await find_blocked_rule("warm up: compiles every rule", rules) is None
    first = time.perf_counter() - started
    times: dict[str, float] = {}
    for name, prompt in prompts.items():
        each = []
        for _ in range(repeat):
            started = time.perf_counter()
            assert await find_blocked_rule(prompt, rules) is None
            each.append(time.perf_counter() - started)
        times[name] = percentile(each, 50)
    await sampler.stop()
    return times, max(sampler.samples, default=0.0), first


def measure(quick: bool, seed: int) -> Report:
    repeat = 2 if quick else 10
    prompts = hostile_prompts(seed)
    regexes = worst_rules()
    full = [*regexes, *word_rules(150)]
    regex_times, regex_stall, regex_first = asyncio.run(_run(regexes, prompts, repeat))
    full_times, full_stall, full_first = asyncio.run(_run(full, prompts, repeat))
    table = Table(
        f"find_blocked_rule on {MAX_PROMPT_CHARS}-character prompts",
        ["prompt", "50 worst regexes (ms)", "+ 150 word rules (ms)"],
        [[name, ms(regex_times[name]), ms(full_times[name])] for name in prompts],
        "Median time of one whole check (folding, skeleton, every rule; no rule matches, so "
        f"each scans the whole prompt), {repeat} checks per prompt.",
    )
    summary = Table(
        "The event loop meanwhile",
        ["blocklist", "longest stall (ms)", "first check, compiling (ms)", "worst prompt (ms)"],
        [
            ["50 worst regexes", ms(regex_stall), ms(regex_first), ms(max(regex_times.values()))],
            ["+ 150 word rules", ms(full_stall), ms(full_first), ms(max(full_times.values()))],
        ],
        "Stall: the most a ticker sleeping 1 ms woke late while checks ran in the worker thread.",
    )
    checks = [
        Check("longest event-loop stall, 50 worst regexes", ms(regex_stall), "<", 10.0, "ms"),
        Check("longest event-loop stall, full blocklist", ms(full_stall), "<", 10.0, "ms"),
    ]
    return Report([table, summary], checks)
