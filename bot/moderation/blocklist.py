"""The prompt blocklist: rules, the normal forms prompts are matched in, and matching.

A rule is a word (or phrase) or a regular expression, always matched case-insensitively.
Every rule is tried against two forms of the prompt: the *folded* form (NFKC, invisible
format characters and combining marks removed) and its *skeleton* (Unicode's UTS #39
confusables mapping on top, so a Cyrillic and a Latin "a" are one letter). Regexes are
matched by RE2 (:mod:`bot.moderation.regexes`), whose searches are linear in the prompt;
word rules are our own escaped patterns on ``re``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

import re2
from confusable_homoglyphs import confusables

from bot.models import BlockRule, RuleKind
from bot.moderation.regexes import MAX_PROMPT_CHARS, compile_regex, validate_regex

log = logging.getLogger(__name__)

MAX_WORD_CHARS = 100
MAX_BLOCK_RULES = 200
"""Rules per server; every rule is run on every prompt."""
MAX_REGEX_RULES = 50
"""Of which regexes: each is an RE2 scan of the prompt's two forms."""


BLOCKLIST_BUDGET = 2.0
"""Seconds one prompt may spend in the blocklist before it is refused unchecked."""

_MAX_SKELETON_CHARS = 4 * MAX_PROMPT_CHARS
# A few prototypes are several letters ("m" is "rn"), so a skeleton can be longer.
_DIRECTION_MARKS = str.maketrans("", "", "\u200e\u200f")


class BlocklistTimeout(TimeoutError):
    """The blocklist check ran out of time before every rule was tried."""


def _prototypes(data: Mapping[str, Any]) -> dict[int, str]:
    """UTS #39's confusable -> prototype map, from confusable-homoglyphs' copy of Unicode's data.

    The package stores each line of confusables.txt both ways, so the map is a forest of
    stars: a prototype is linked to all its look-alikes, a look-alike only to its prototype.
    A look-alike and a prototype that only have each other cannot be told apart from the data;
    either serves as long as the choice is the same everywhere (ASCII first, then the lower
    code point).
    """
    links: dict[str, set[str]] = {}
    for key, entries in data.items():
        links.setdefault(key.translate(_DIRECTION_MARKS), set()).update(
            entry["c"].translate(_DIRECTION_MARKS) for entry in entries
        )
    table: dict[int, str] = {}
    for char, linked in links.items():
        if len(char) != 1 or len(linked) != 1:
            continue  # a prototype (or a multi-letter sequence, never a look-alike)
        (other,) = linked
        is_prototype = len(links.get(other, ())) > 1 or len(other) != 1
        if is_prototype or (not other.isascii(), ord(other)) < (not char.isascii(), ord(char)):
            table[ord(char)] = other
    return table


@functools.cache
def _prototype_table() -> dict[int, str]:
    return _prototypes(confusables.confusables_data)


def _fold_once(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    decomposed = unicodedata.normalize("NFD", text)
    bare = "".join(ch for ch in decomposed if unicodedata.category(ch) not in ("Mn", "Me"))
    return unicodedata.normalize("NFC", bare)


def _fixpoint(step: Any, text: str) -> str:
    # Each step can expose one more thing to fold (NFKC of a stripped letter, a prototype
    # that is itself a compatibility form); a few rounds reach the fixed point.
    for _ in range(6):
        folded: str = step(text)
        if folded == text:
            break
        text = folded
    return text


def normalize_prompt(prompt: str) -> str:
    """The folded form: NFKC, format characters (zero-width, bidi) and combining marks removed.

    NFKC turns full-width and other compatibility letters into plain ones, dropping format
    characters stops "nu\\u200bde" slipping past a word rule, and dropping combining marks
    (after NFD) turns "d\\u0336r\\u0336a\\u0336g\\u0336o\\u0336n\\u0336" and "drágon" into "dragon".
    Idempotent.
    """
    return _fixpoint(_fold_once, prompt)


def skeleton(text: str) -> str:
    """The UTS #39 skeleton of the folded, case-folded text: look-alike letters become one.

    Idempotent; ``skeleton(a) == skeleton(b)`` when ``a`` and ``b`` differ only in look-alike
    letters ("dragon" spelled with a Cyrillic "a", and "dragon"), case, invisible characters
    or marks.
    """
    table = _prototype_table()

    def step(current: str) -> str:
        return normalize_prompt(normalize_prompt(current).casefold().translate(table).casefold())

    return _fixpoint(step, text)


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
    # Whole words only: "ass" must not refuse "class". RE2 has no look-around and only an
    # ASCII \b, so the boundary is a character that is no Unicode letter, digit or "_" (or
    # the text's edge), which also gives a word that starts or ends with punctuation ("c++")
    # its boundary; any run of spaces matches a space inside a phrase. Matched by RE2 like
    # the regex rules: linear, and a whole blocklist stays far below a stall of the bot.
    body = r"[\s\p{Z}]+".join(re2.escape(part) for part in word.split())
    return rf"(?:^|[^\pL\pN_])(?:{body})(?:[^\pL\pN_]|$)"


class _Matcher:
    """One rule, ready to search a prompt's folded form and its skeleton."""

    def __init__(self, folded: Any, skeletal: Any) -> None:
        self._folded = folded
        self._skeletal = skeletal

    def hits(self, folded: str, skeletal: str) -> bool:
        return (
            self._folded.search(folded) is not None or self._skeletal.search(skeletal) is not None
        )


@functools.lru_cache(maxsize=2048)
def _compiled(kind: RuleKind, pattern: str) -> _Matcher | None:
    """The matcher of a rule, or None (logged once) for a stored regex RE2 cannot take."""
    if kind == "word":
        return _Matcher(
            compile_regex(_word_regex(normalize_word(pattern))),
            compile_regex(_word_regex(skeleton(pattern))),
        )
    try:
        validate_regex(pattern)
    except ValueError as exc:
        # Rules are vetted when added; a database written by an older bot may hold a
        # pattern RE2 refuses (a look-ahead, say). It is skipped, not run on `re`.
        log.warning("blocklist regex %r is skipped: %s", pattern, exc)
        return None
    matcher = compile_regex(pattern)
    return _Matcher(matcher, matcher)


def check_prompt_blocked(
    prompt: str, rules: Iterable[BlockRule], *, deadline: float | None = None
) -> BlockRule | None:
    """The first rule (in the given order) that matches ``prompt``, or None.

    Words match whole words, case-insensitively; regexes match anywhere, case-insensitively.
    Both see the prompt folded by :func:`normalize_prompt` and cut to
    :data:`MAX_PROMPT_CHARS` characters (the longest prompt a job can have), and its
    :func:`skeleton`; a hit in either refuses it. With a
    ``deadline`` (on :func:`time.monotonic`'s clock), raises :class:`BlocklistTimeout` when
    it passes before every rule was tried.
    """
    folded = normalize_prompt(prompt)[:MAX_PROMPT_CHARS]
    skeletal = skeleton(folded)[:_MAX_SKELETON_CHARS]
    for rule in rules:
        if deadline is not None and time.monotonic() > deadline:
            raise BlocklistTimeout(f"blocklist check stopped before {rule.describe()}")
        matcher = _compiled(rule.kind, rule.pattern)
        if matcher is not None and matcher.hits(folded, skeletal):
            return rule
    return None


async def find_blocked_rule(
    prompt: str, rules: Iterable[BlockRule], *, budget: float = BLOCKLIST_BUDGET
) -> BlockRule | None:
    """:func:`check_prompt_blocked` in a worker thread, within ``budget`` seconds.

    The thread keeps the event loop free; the budget bounds the whole check to the budget
    plus one rule, and one rule is one linear scan (RE2 for regexes).
    Raises :class:`BlocklistTimeout` when the budget runs out.
    """
    deadline = time.monotonic() + budget
    return await asyncio.to_thread(check_prompt_blocked, prompt, list(rules), deadline=deadline)
