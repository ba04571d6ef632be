"""The prompt blocklist: rules, and matching them against a prompt's two forms.

A rule is a word (or phrase) or a regular expression, always matched case-insensitively.
Every rule is tried against two forms of the prompt (:mod:`bot.moderation.folding`): the
*folded* form (NFKC, invisible format characters and combining marks removed) and its
*skeleton* (Unicode's UTS #39 confusables mapping on top, so a Cyrillic and a Latin "a" are one
letter). Both are matched by RE2 (:mod:`bot.moderation.regexes`), whose searches are linear in
the prompt and let go of the GIL while they run, so the event loop stays free.

A server's word rules are searched a chunk at a time: one RE2 alternation of up to
:data:`WORD_CHUNK` words' text (:data:`WORD_CHUNK_CHARS` characters) per form finds whether any
of them occurs at all; only a chunk that does is looked at word by word, and a word whose text
occurs is judged whole or not by the characters at the edges of each occurrence. A prompt with
no blocked word therefore costs a handful of searches, however many words the server blocks,
and no pattern with the (slow to compile) Unicode boundary classes is compiled per word unless
a prompt holds its text dozens of times.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import re2

from bot.models import BlockRule
from bot.moderation.folding import normalize_prompt, skeleton, skeleton_of_folded
from bot.moderation.regexes import MAX_PROMPT_CHARS, compile_regex, validate_regex

log = logging.getLogger(__name__)

MAX_WORD_CHARS = 100
MAX_BLOCK_RULES = 200
"""Rules per server; every rule is run on every prompt."""
MAX_REGEX_RULES = 50
"""Of which regexes: each is an RE2 scan of the prompt's two forms."""
WORD_CHUNK = 25
"""Word rules screened by one RE2 search per form, at most."""
WORD_CHUNK_CHARS = 500
"""And at most this many characters of them: compiling a chunk holds the GIL (about 1 ms for
500 characters), so a chunk stays small enough that compiling it never stalls the bot."""

BLOCKLIST_BUDGET = 2.0
"""Seconds one prompt may spend in the blocklist before it is refused unchecked."""

_MAX_SKELETON_CHARS = 4 * MAX_PROMPT_CHARS
# A few prototypes are several letters ("m" is "rn"), so a skeleton can be longer.


PAUSE_EVERY = 0.001
"""Seconds a check in a worker thread works before it pauses for :data:`PAUSE`."""
PAUSE = 0.0001
"""Why pause: the event loop waits for the GIL while the worker holds it. RE2 lets the GIL go
during each search, but a search of a short text ends before the loop's thread is awake, and
the worker takes the GIL back first; CPython hands the GIL over by force only after its 5 ms
switch interval, and every such release and retake starts that wait again. Back to back, the
short searches of a long blocklist could starve the loop for 10-20 ms. A sleep, however
short, really gives the GIL away."""


class BlocklistTimeout(TimeoutError):
    """The blocklist check ran out of time before every rule was tried."""


class _Pace:
    """Between two steps of a check: stop at the deadline, pause now and then."""

    def __init__(self, deadline: float | None, pause_every: float | None) -> None:
        self._deadline = deadline
        self._every = pause_every
        self._due = time.perf_counter() + pause_every if pause_every is not None else 0.0
        self.rule = ""
        """The rule being tried, as a refusal would name it."""

    def step(self) -> None:
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise BlocklistTimeout(f"blocklist check stopped before {self.rule}")
        if self._every is not None and time.perf_counter() >= self._due:
            time.sleep(PAUSE)
            self._due = time.perf_counter() + self._every


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


@dataclass(frozen=True)
class _Forms:
    """A prompt's two forms, encoded once as the UTF-8 RE2 searches."""

    folded: bytes
    skeletal: bytes
    same: bool

    @classmethod
    def of(cls, prompt: str) -> _Forms:
        folded = normalize_prompt(prompt)[:MAX_PROMPT_CHARS]
        skeletal = skeleton_of_folded(folded)[:_MAX_SKELETON_CHARS]
        return cls(folded.encode(), skeletal.encode(), skeletal == folded)


class _Matcher:
    """A pattern for each form (one, when they are the same), searching that form."""

    def __init__(self, folded: str, skeletal: str) -> None:
        self._folded = compile_regex(folded)
        self._skeletal = self._folded if skeletal == folded else compile_regex(skeletal)

    def hits(self, forms: _Forms) -> bool:
        if self._folded.search(forms.folded) is not None:
            return True
        if self._skeletal is self._folded and forms.same:
            return False  # the same search again
        return self._skeletal.search(forms.skeletal) is not None

    def searches(
        self, patterns: tuple[str, str], forms: _Forms
    ) -> Iterator[tuple[str, Any, bytes]]:
        """(pattern, compiled, form) for each form, as :meth:`hits` searches them."""
        yield patterns[0], self._folded, forms.folded
        if not (self._skeletal is self._folded and forms.same):
            yield patterns[1], self._skeletal, forms.skeletal


# -- word rules ---------------------------------------------------------------------------


def _word_text(word: str) -> str:
    """The RE2 pattern of a word's letters: escaped, any run of spaces inside a phrase."""
    return r"[\s\p{Z}]+".join(re2.escape(part) for part in word.split())


def _whole_word(text: str) -> str:
    # Whole words only: "ass" must not refuse "class". RE2 has no look-around and only an
    # ASCII \b, so the boundary is a character that is no Unicode letter, digit or "_" (or
    # the text's edge), which also gives a word that starts or ends with punctuation ("c++")
    # its boundary.
    return rf"(?:^|[^\pL\pN_])(?:{text})(?:[^\pL\pN_]|$)"


_WORD_CHARACTER = compile_regex(r"[\pL\pN_]")
"""What is no boundary: the complement of the class :func:`_whole_word` puts around a word,
with the same RE2 options (so the same letters, digits and case variants)."""
MAX_OCCURRENCES = 32
"""Occurrences of a word's text whose edges are looked at one by one; past this many, the
word's own whole-word pattern decides."""


def _char_length(lead: int) -> int:
    """Bytes of the UTF-8 character whose first byte is ``lead``."""
    return 1 if lead < 0xC0 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4


_ASCII_WORD_BYTES = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz")
"""The ASCII characters in :data:`_WORD_CHARACTER` (case folding adds none)."""


def _is_boundary(text: bytes, start: int, end: int) -> bool:
    """Whether the UTF-8 character ``text[start:end]`` (none, at an edge) is a boundary."""
    if end - start == 1:
        return text[start] not in _ASCII_WORD_BYTES
    return start == end or _WORD_CHARACTER.fullmatch(text, start, end) is None


def _whole_at(text: bytes, start: int, end: int) -> bool:
    """Whether an occurrence at ``text[start:end]`` stands as a whole word."""
    before = start
    while before > 0:
        before -= 1
        if text[before] & 0xC0 != 0x80:  # the first byte of the character before
            break
    after = end + _char_length(text[end]) if end < len(text) else end
    return _is_boundary(text, before, start) and _is_boundary(text, end, after)


def _found_whole(anywhere: Any, text: bytes, pace: _Pace) -> bool | None:
    """Whether the word ``anywhere`` finds stands whole somewhere in ``text``; None when its
    text occurs too often to look at each occurrence."""
    pos = 0
    for _ in range(MAX_OCCURRENCES):
        pace.step()
        found = anywhere.search(text, pos)
        if found is None:
            return False
        start, end = found.span()
        if _whole_at(text, start, end):
            return True
        pos = start + _char_length(text[start])
    return None


class _Word:
    """A word rule's text in each form, found anywhere and then judged whole or not.

    Compiling a pattern with the Unicode boundary classes holds the GIL for a few ms, so a
    word's own whole-word pattern is built only for a prompt holding its text more than
    :data:`MAX_OCCURRENCES` times; otherwise the edges of each occurrence are looked at.
    """

    def __init__(self, word: str) -> None:
        folded, skeletal = _forms_of_word(word)
        self._texts = (_word_text(folded), _word_text(skeletal))
        self._anywhere = _Matcher(*self._texts)

    def hits(self, forms: _Forms, pace: _Pace) -> bool:
        for text, anywhere, form in self._anywhere.searches(self._texts, forms):
            found = _found_whole(anywhere, form, pace)
            if found is None:
                pace.step()
                found = _whole_word_pattern(text).search(form) is not None
            if found:
                return True
        return False


def _forms_of_word(word: str) -> tuple[str, str]:
    """A stored word as it is looked for in the folded form and in the skeleton."""
    return normalize_word(word), skeleton(word)


@functools.lru_cache(maxsize=4096)
def _word(word: str) -> _Word:
    return _Word(word)


@functools.lru_cache(maxsize=1024)
def _whole_word_pattern(text: str) -> Any:
    return compile_regex(_whole_word(text))


@functools.lru_cache(maxsize=1024)
def _word_screen(words: tuple[str, ...]) -> _Matcher | None:
    """One search per form telling whether any of ``words``' text occurs; None if too big."""
    forms = [_forms_of_word(word) for word in words]
    try:
        return _Matcher(
            "|".join(f"(?:{_word_text(folded)})" for folded, _ in forms),
            "|".join(f"(?:{_word_text(skeletal)})" for _, skeletal in forms),
        )
    except ValueError as exc:
        log.warning("blocked words are checked one by one: %s", exc)
        return None


class _WordRules:
    """A server's word rules in chunks, each screened at most once per prompt."""

    def __init__(self, words: Sequence[str]) -> None:
        chunks: list[list[str]] = []
        size = 0
        for word in words:
            if not chunks or len(chunks[-1]) == WORD_CHUNK or size + len(word) > WORD_CHUNK_CHARS:
                chunks.append([])
                size = 0
            chunks[-1].append(word)
            size += len(word)
        self._chunks = [tuple(chunk) for chunk in chunks]
        self._chunk_of = {word: n for n, chunk in enumerate(self._chunks) for word in chunk}
        self._screened: dict[int, bool] = {}

    def hits(self, word: str, forms: _Forms, pace: _Pace) -> bool:
        chunk = self._chunk_of[word]
        if chunk not in self._screened:
            screen = _word_screen(self._chunks[chunk])
            pace.step()
            self._screened[chunk] = screen is None or screen.hits(forms)
        if not self._screened[chunk]:
            return False
        return _word(word).hits(forms, pace)


# -- regex rules --------------------------------------------------------------------------


@functools.lru_cache(maxsize=2048)
def _regex_matcher(pattern: str) -> _Matcher | None:
    """The matcher of a stored regex, or None (logged once) for one RE2 cannot take."""
    try:
        validate_regex(pattern)
    except ValueError as exc:
        # Rules are vetted when added; a database written by an older bot may hold a
        # pattern RE2 refuses (a look-ahead, say). It is skipped, not run on `re`.
        log.warning("blocklist regex %r is skipped: %s", pattern, exc)
        return None
    return _Matcher(pattern, pattern)


def check_prompt_blocked(
    prompt: str,
    rules: Iterable[BlockRule],
    *,
    deadline: float | None = None,
    pause_every: float | None = None,
) -> BlockRule | None:
    """The first rule (in the given order) that matches ``prompt``, or None.

    Words match whole words, case-insensitively; regexes match anywhere, case-insensitively.
    Both see the prompt folded by :func:`~bot.moderation.folding.normalize_prompt` and cut to
    :data:`MAX_PROMPT_CHARS` characters (the longest prompt a job can have), and its
    :func:`~bot.moderation.folding.skeleton`; a hit in either refuses it. With a
    ``deadline`` (on :func:`time.monotonic`'s clock), raises :class:`BlocklistTimeout` when
    it passes before every rule was tried. With ``pause_every`` (seconds), the check pauses
    briefly that often, for a check in a worker thread (see :data:`PAUSE`).
    """
    rules = list(rules)
    pace = _Pace(deadline, pause_every)
    forms = _Forms.of(prompt)
    words = _WordRules(list(dict.fromkeys(r.pattern for r in rules if r.kind == "word")))
    for rule in rules:
        pace.rule = rule.describe()
        pace.step()
        if rule.kind == "word":
            if words.hits(rule.pattern, forms, pace):
                return rule
            continue
        matcher = _regex_matcher(rule.pattern)
        if matcher is not None and matcher.hits(forms):
            return rule
    return None


async def find_blocked_rule(
    prompt: str, rules: Iterable[BlockRule], *, budget: float = BLOCKLIST_BUDGET
) -> BlockRule | None:
    """:func:`check_prompt_blocked` in a worker thread, within ``budget`` seconds.

    The thread keeps the event loop free (pausing every :data:`PAUSE_EVERY` s of work so the
    loop gets the GIL); the budget bounds the whole check to the budget plus one step, and
    one step is one linear search (RE2) or one compile. The budget counts from the moment a
    thread takes the check: waiting for one (while decodes or other checks hold them all) is
    not held against the prompt. Raises :class:`BlocklistTimeout` when the budget runs out.
    """
    listed = list(rules)

    def check() -> BlockRule | None:
        deadline = time.monotonic() + budget
        return check_prompt_blocked(prompt, listed, deadline=deadline, pause_every=PAUSE_EVERY)

    return await asyncio.to_thread(check)
