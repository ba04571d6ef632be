"""Moderators' regexes, matched by RE2: linear in the prompt's length whatever the pattern.

Python's ``re`` backtracks, and a search holds the GIL, so one moderator's pattern and one long
prompt could stop the whole bot. RE2 (Google's engine, through ``google-re2``) never
backtracks: a search costs time proportional to the prompt, bounded memory, and nothing the
pattern says changes that. What RE2 cannot do (look-around, back-references) is refused when
the rule is added, with a reason a moderator can act on.
"""

from __future__ import annotations

import re
from typing import Any

import re2

MAX_PROMPT_CHARS = 1900
"""The longest prompt /animate accepts; regex rules are only ever run on this much text."""
MAX_REGEX_CHARS = 200
REGEX_MAX_MEM = 4 << 20
"""Bytes RE2 may use for one compiled rule; a pattern whose automaton needs more is refused."""
MAX_PROGRAM_SIZE = 1500
"""RE2 instructions one rule may compile to. A search costs about this times the prompt's
length at worst, so nested counted repeats like (a{1,30}){1,30} (1,864) are refused; ordinary
rules take a few dozen, a Unicode class like \\p{L} about a thousand."""

# Syntax RE2 refuses, spotted in the moderator's text so the refusal can say why. These are
# our own patterns, scanned once over at most MAX_REGEX_CHARS characters.
_UNSUPPORTED: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"\(\?<?[=!]"),
        "look-around like (?=…), (?!…), (?<=…) or (?<!…) isn't supported",
    ),
    (
        re.compile(r"\\[1-9]|\\g<|\(\?P=|\(\?\("),
        r"back-references like \1 or (?P=name), and conditionals, aren't supported",
    ),
    (re.compile(r"\(\?>"), "atomic groups like (?>…) aren't supported"),
    (
        re.compile(r"(?<!\\)[*+?}]\+"),
        "possessive quantifiers like a++ aren't supported (RE2 never backtracks anyway)",
    ),
)


_REPEAT_SIZE = re.compile(r"invalid repetition size: (\{(\d+)(?:,(\d*))?\})")
_TOO_LARGE = "This pattern is too large: its repetitions expand too far. Use smaller counts."


def _options() -> Any:
    options = re2.Options()
    options.case_sensitive = False
    options.max_mem = REGEX_MAX_MEM
    # RE2 prints every refused pattern to stderr; the moderator gets the reason instead.
    options.log_errors = False
    return options


_OPTIONS = _options()


def compile_regex(pattern: str) -> Any:
    """Compile a moderator's pattern with RE2, case-insensitively, within bounded memory.

    Raises ``ValueError`` with a moderator-facing reason when RE2 cannot take it.
    """
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        raise ValueError(_explain(pattern, exc)) from None


def _explain(pattern: str, exc: Exception) -> str:
    for shape, reason in _UNSUPPORTED:
        if shape.search(pattern):
            return f"This pattern can't be used: {reason}."
    detail = exc.args[0] if exc.args else ""
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", errors="replace")
    detail = str(detail)
    if "too large" in detail or "too big" in detail:
        return _TOO_LARGE
    repeat = _REPEAT_SIZE.search(detail)
    if repeat is not None:
        # RE2 says "invalid repetition size" for {2,1}, but also for any count over 1000 and
        # for nested counts whose product is over 1000, where the count it quotes is fine.
        braces, low, high = repeat[1], int(repeat[2]), repeat[3]
        if high and int(high) < low:
            return (
                f"This is not a valid regular expression: in {braces} the first count must "
                "not be larger than the second."
            )
        return (
            "This pattern is too large: a repetition counts to at most 1000, and nested "
            "repetitions multiply. Use smaller counts."
        )
    return f"This is not a valid regular expression: {detail or 'RE2 refused it'}."


def validate_regex(pattern: str) -> None:
    """Refuse a blocklist regex that is empty, too long, not RE2 syntax, or matches anything.

    Raises ``ValueError`` with a message for the moderator. Any pattern RE2 compiles is safe
    to run: its searches are linear in the prompt, so no shape of pattern is refused for speed.
    """
    if not pattern.strip():
        raise ValueError("A blocked pattern cannot be empty.")
    if len(pattern) > MAX_REGEX_CHARS:
        raise ValueError(f"A blocked pattern can be at most {MAX_REGEX_CHARS} characters long.")
    if "\x00" in pattern:
        raise ValueError("A blocked pattern cannot contain a NUL character.")
    compiled = compile_regex(pattern)
    if compiled.programsize > MAX_PROGRAM_SIZE:
        raise ValueError(_TOO_LARGE)
    if compiled.search("") is not None:
        raise ValueError("The pattern matches an empty text, so it would refuse every prompt.")


async def vet_regex(pattern: str) -> str:
    """:func:`validate_regex`; the pattern, ready to store."""
    validate_regex(pattern)
    return pattern
