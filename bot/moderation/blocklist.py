"""The prompt blocklist: rules, the normal form prompts are matched in, and matching.

A rule is a word (or phrase) or a regular expression, always matched case-insensitively
against the prompt after Unicode normalisation. Regexes are vetted when they are added
(:mod:`bot.moderation.regexes`); matching runs in a worker thread within a time budget.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
import unicodedata
from collections.abc import Iterable

from bot.models import BlockRule, RuleKind
from bot.moderation.regexes import MAX_PROMPT_CHARS, validate_regex

log = logging.getLogger(__name__)

MAX_WORD_CHARS = 100
MAX_BLOCK_RULES = 200
"""Rules per server; every rule is run on every prompt."""
MAX_REGEX_RULES = 50
"""Of which regexes: a word costs one linear scan, a regex up to a tenth of a second."""


BLOCKLIST_BUDGET = 2.0
"""Seconds one prompt may spend in the blocklist before it is refused unchecked."""


class BlocklistTimeout(TimeoutError):
    """The blocklist check ran out of time before every rule was tried."""


def normalize_prompt(prompt: str) -> str:
    """The text rules are matched against: NFKC-folded, invisible format characters removed.

    NFKC turns look-alikes such as full-width letters into plain ones, and dropping format
    characters (zero-width spaces and joiners) stops "nu\\u200bde" slipping past a word rule.
    """
    folded = unicodedata.normalize("NFKC", prompt)
    return "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")


def normalize_word(word: str) -> str:
    """The stored form of a word rule: normalised like a prompt, lower case, single spaces.

    Raises ``ValueError`` with a moderator-facing message when the word cannot be a rule.
    """
    text = " ".join(normalize_prompt(word).lower().split())
    if not text:
        raise ValueError("A blocked word cannot be empty.")
    if len(text) > MAX_WORD_CHARS:
        raise ValueError(f"A blocked word can be at most {MAX_WORD_CHARS} characters long.")
    if any(unicodedata.category(ch).startswith("C") for ch in text):
        raise ValueError("A blocked word cannot contain control characters.")
    return text


def _word_regex(word: str) -> str:
    # Whole words only: "ass" must not refuse "class". Look-arounds instead of \b so a word
    # that starts or ends with punctuation ("c++") still has a boundary; any run of
    # whitespace matches a space inside a phrase.
    body = r"\s+".join(re.escape(part) for part in word.split())
    return rf"(?<!\w){body}(?!\w)"


@functools.lru_cache(maxsize=2048)
def _compiled(kind: RuleKind, pattern: str) -> re.Pattern[str] | None:
    """The compiled matcher of a rule, or None (logged once) for a regex that is not safe."""
    if kind == "word":
        return re.compile(_word_regex(pattern), re.IGNORECASE)
    try:
        validate_regex(pattern)
    except ValueError as exc:
        # Rules are validated when added; this only happens if a newer, stricter bot reads an
        # older database. Running an unsafe pattern is worse than not running it.
        log.warning("blocklist regex %r is skipped: %s", pattern, exc)
        return None
    return re.compile(pattern, re.IGNORECASE)


def check_prompt_blocked(
    prompt: str, rules: Iterable[BlockRule], *, deadline: float | None = None
) -> BlockRule | None:
    """The first rule (in the given order) that matches ``prompt``, or None.

    Words match whole words, case-insensitively; regexes match anywhere, case-insensitively.
    Both see the prompt normalised by :func:`normalize_prompt` and cut to
    :data:`MAX_PROMPT_CHARS` characters, the longest prompt a job can have. With a
    ``deadline`` (on :func:`time.monotonic`'s clock), raises :class:`BlocklistTimeout` when
    it passes before every rule was tried.
    """
    text = normalize_prompt(prompt)[:MAX_PROMPT_CHARS]
    for rule in rules:
        if deadline is not None and time.monotonic() > deadline:
            raise BlocklistTimeout(f"blocklist check stopped before {rule.describe()}")
        matcher = _compiled(rule.kind, rule.pattern)
        if matcher is not None and matcher.search(text) is not None:
            return rule
    return None


async def find_blocked_rule(
    prompt: str, rules: Iterable[BlockRule], *, budget: float = BLOCKLIST_BUDGET
) -> BlockRule | None:
    """:func:`check_prompt_blocked` in a worker thread, within ``budget`` seconds.

    The thread keeps the event loop free; the budget bounds the whole check to the budget
    plus one rule (every rule is proven fast when added, but a server may have many).
    Raises :class:`BlocklistTimeout` when the budget runs out.
    """
    deadline = time.monotonic() + budget
    return await asyncio.to_thread(check_prompt_blocked, prompt, list(rules), deadline=deadline)
