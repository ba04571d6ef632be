"""Hostile prompts and hostile moderator patterns: nothing stalls the bot or slips past a rule.

The freeze these tests reproduce: the old hand-written "safe regex" analysis compared character
classes on a sample of about a hundred characters, so a class of letters outside it (Greek
here) looked harmless, and Python's ``re`` then spent hours on one 1,900-character prompt,
holding the GIL the whole time.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import re2
from confusable_homoglyphs import confusables
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.models import BlockRule
from bot.moderation.blocklist import (
    WORD_CHUNK,
    check_prompt_blocked,
    find_blocked_rule,
    normalize_word,
)
from bot.moderation.folding import normalize_prompt, skeleton
from bot.moderation.gates import RequestRefused
from bot.moderation.regexes import MAX_PROMPT_CHARS, compile_regex, validate_regex
from bot.store import Store, open_store
from tests.harness.store_calls import add_block_rule, check_gates

GUILD, MEMBER, MOD = 1000, 11, 99

# Three quantifiers over Greek letters in a row: cubic backtracking per start position.
GREEK_FREEZE = "[\u03b1-\u03c9]+[\u03b1-\u03c9]+[\u03b1-\u03c9]+x"
GREEK_PROMPT = "\u03b1" * MAX_PROMPT_CHARS

HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def word(pattern: str, rule_id: int = 1) -> BlockRule:
    return BlockRule("word", normalize_word(pattern), rule_id)


def regex(pattern: str, rule_id: int = 1) -> BlockRule:
    return BlockRule("regex", pattern, rule_id)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(tmp_path / "bot.db") as opened:
        yield opened


# -- the freeze ---------------------------------------------------------------------------


def test_a_pattern_with_letters_outside_any_sample_cannot_freeze_matching() -> None:
    # Accepted when added (it is a fine RE2 pattern), and a whole check of the longest
    # prompt in a fresh process (import time included) ends far within the bound. With
    # Python's re this one search runs for hours, so the process is killed at the bound.
    validate_regex(GREEK_FREEZE)
    script = (
        "from bot.models import BlockRule\n"
        "from bot.moderation.blocklist import check_prompt_blocked\n"
        f"rule = BlockRule('regex', {GREEK_FREEZE!r}, 1)\n"
        f"assert check_prompt_blocked({GREEK_PROMPT!r}, [rule]) is None\n"
        f"assert check_prompt_blocked({GREEK_PROMPT[:-1]!r} + 'x', [rule]) == rule\n"
    )
    try:
        subprocess.run([sys.executable, "-c", script], check=True, timeout=30, cwd=Path.cwd())
    except subprocess.TimeoutExpired:
        pytest.fail("a moderator's regex kept the blocklist check busy for 30 s")


async def test_fifty_hostile_rules_leave_the_event_loop_free() -> None:
    rules = [regex(GREEK_FREEZE, n) for n in range(1, 26)]
    rules += [regex(r"(\w+\s?)+!$|(a|aa)+b|.*.*.*=", n) for n in range(26, 51)]
    lateness = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal lateness
        while not done.is_set():
            before = time.monotonic()
            await asyncio.sleep(0.005)
            lateness = max(lateness, time.monotonic() - before - 0.005)

    tick = asyncio.create_task(ticker())
    try:
        for prompt in (GREEK_PROMPT, "a" * MAX_PROMPT_CHARS, "a " * (MAX_PROMPT_CHARS // 2)):
            assert await find_blocked_rule(prompt, rules) is None
    finally:
        done.set()
        await tick
    # A very loose bound on a shared machine: the old engine stalled for hours.
    assert lateness < 2.0


async def test_a_once_refused_shape_is_stored_and_blocks(store: Store) -> None:
    rule = await add_block_rule(store, GUILD, "regex", GREEK_FREEZE, by=MOD)
    with pytest.raises(RequestRefused) as info:
        await check_gates(store, GUILD, MEMBER, 1, prompt="a quiet \u03b1\u03b2\u03b3\u03b4x")
    assert info.value.rule == rule
    await check_gates(store, GUILD, MEMBER, 1, prompt=GREEK_PROMPT)


# -- look-alikes and marks ------------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt",
    [
        "a dr\u0430gon flies",  # a Cyrillic a
        "a d\u0336r\u0336a\u0336g\u0336o\u0336n\u0336 flies",  # combining long stroke overlay
        "a \u0434ragon",  # Cyrillic д is no d: must NOT be blocked (a different letter)
        "a DR\u0391GON",  # Greek capital alpha
        "a drágón",
        "a dr\u200d\u2066agon",  # zero-width joiner and a bidi isolate
        "a \U0001d41d\U0001d42b\U0001d41a\U0001d420\U0001d428\U0001d427",  # mathematical bold
    ],
)
async def test_look_alike_letters_and_marks_do_not_evade_a_word(store: Store, prompt: str) -> None:
    words = await add_block_rule(store, GUILD, "word", "dragon", by=MOD)
    blocked = "\u0434" not in prompt
    if blocked:
        with pytest.raises(RequestRefused) as info:
            await check_gates(store, GUILD, MEMBER, 1, prompt=prompt)
        assert info.value.rule == words
        assert "blocklist" in info.value.message
    else:
        await check_gates(store, GUILD, MEMBER, 1, prompt=prompt)


def test_look_alikes_do_not_evade_a_regex_either() -> None:
    rule = regex(r"\bdragons?\b")
    assert check_prompt_blocked("two dr\u0430gons", [rule]) == rule
    assert check_prompt_blocked("d\u0336r\u0336a\u0336g\u0336o\u0336n\u0336", [rule]) == rule
    assert check_prompt_blocked("a dragonfly", [rule]) is None


def test_whole_words_still_mean_whole_words_after_folding() -> None:
    rule = word("ass")
    for innocent in ("a class", "cl\u0430ss", "a bass guitar", "passion"):
        assert check_prompt_blocked(innocent, [rule]) is None
    assert check_prompt_blocked("\u0430ss", [rule]) == rule


def test_a_word_rule_given_in_look_alikes_matches_the_plain_word() -> None:
    # A moderator who pastes "dragon" spelled with a Cyrillic a still blocks the Latin spelling.
    rule = word("dr\u0430gon")
    assert check_prompt_blocked("a dragon", [rule]) == rule


def test_every_invisible_character_and_mark_unicode_knows_is_folded_away() -> None:
    # The folding tables are built from the planes Unicode puts these characters in; this
    # checks the claim against every code point this Python's Unicode database knows.
    hidden = [
        chr(code)
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in ("Cf", "Mn", "Me")
    ]
    assert len(hidden) > 2000
    text = "".join(f"x{char}" for char in hidden)
    assert normalize_prompt(text) == "x" * len(hidden)


# -- properties -------------------------------------------------------------------------

_INVISIBLE = st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u2066", "\u202e"])
_MARKS = st.sampled_from(["\u0301", "\u0336", "\u0338", "\u20dd", "\u0489", "\u0323", "\u034f"])
_WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=12)


def _look_alikes(letter: str) -> list[str]:
    """Single characters Unicode lists as confusable with ``letter`` (from the package's data)."""
    found = []
    for entry in confusables.confusables_data.get(letter, []):
        char = entry["c"].strip("\u200e\u200f")
        if len(char) == 1 and skeleton(char) == skeleton(letter):
            found.append(char)
    return found


@HYPOTHESIS
@given(st.text(max_size=60))
def test_normalisation_is_idempotent(text: str) -> None:
    once = normalize_prompt(text)
    assert normalize_prompt(once) == once
    shape = skeleton(text)
    assert skeleton(shape) == shape


@HYPOTHESIS
@given(st.text(max_size=40))
def test_folded_text_has_no_invisible_characters_or_marks(text: str) -> None:
    for form in (normalize_prompt(text), skeleton(text)):
        assert not any(unicodedata.category(ch) in ("Cf", "Mn", "Me") for ch in form)


@HYPOTHESIS
@given(_WORDS, st.data())
def test_invisible_characters_and_marks_never_evade_a_word(text: str, data: st.DataObject) -> None:
    rule = word(text)
    noise = st.lists(st.one_of(_INVISIBLE, _MARKS), max_size=3).map("".join)
    disguised = "".join(letter + data.draw(noise) for letter in text)
    assert check_prompt_blocked(f"look: {disguised}!", [rule]) == rule


@HYPOTHESIS
@given(_WORDS, st.data())
def test_look_alike_letters_never_evade_a_word(text: str, data: st.DataObject) -> None:
    rule = word(text)
    disguised = "".join(
        data.draw(st.sampled_from([letter, *_look_alikes(letter)])) for letter in text
    )
    assert check_prompt_blocked(f"a {disguised} b", [rule]) == rule


@HYPOTHESIS
@given(_WORDS, st.data())
def test_a_literal_regex_blocks_the_same_prompts_with_noise(text: str, data: st.DataObject) -> None:
    rule = regex(text)
    noise = st.lists(st.one_of(_INVISIBLE, _MARKS), max_size=2).map("".join)
    disguised = "".join(letter + data.draw(noise) for letter in text)
    assert check_prompt_blocked(f"x{disguised}y", [rule]) == rule


@HYPOTHESIS
@given(_WORDS, _WORDS)
def test_a_word_never_blocks_a_longer_plain_word(text: str, tail: str) -> None:
    rule = word(text)
    longer = text + tail
    if skeleton(longer) != skeleton(text) and not any(
        skeleton(part) == skeleton(text) for part in longer.split()
    ):
        assert check_prompt_blocked(f"a {longer} b", [rule]) is None


# Syllables, so that a prompt holds some rules' text (whole or inside a longer word) and not
# others', and a chunk of word rules can be passed over as a whole.
_SYLLABLES = [c + v for c in "bdgkmnprst" for v in "aeiou"]
_RULE_TEXT = st.lists(st.sampled_from(_SYLLABLES), min_size=1, max_size=2).map("".join)
_PROMPT_PART = st.sampled_from([*_SYLLABLES, " ", "-", "_", "1", "\u0301", "\u043e", "\u200b"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    # Mostly words, and more than a chunk of them.
    st.lists(
        st.tuples(st.sampled_from([False, False, False, True]), _RULE_TEXT),
        min_size=WORD_CHUNK + 5,
        max_size=2 * WORD_CHUNK + 10,
    ),
    st.lists(_PROMPT_PART, max_size=8),
)
def test_a_blocklist_answers_as_its_rules_one_by_one_would(
    specs: list[tuple[bool, str]], parts: list[str]
) -> None:
    # Words are screened a chunk at a time; the answer must still be the first rule, in
    # order, that would refuse the prompt on its own.
    rules = [
        regex(text, n) if is_regex else word(text, n) for n, (is_regex, text) in enumerate(specs)
    ]
    prompt = "".join(parts)
    alone = [rule for rule in rules if check_prompt_blocked(prompt, [rule]) == rule]
    assert check_prompt_blocked(prompt, rules) == (alone[0] if alone else None)


_EDGES = st.sampled_from(
    [
        *("a", "k", "K", "\u212a", "\u00df", "ss", "\u00e9", "e\u0301", " ", "\u00a0", "_"),
        *("1", "-", "+", "\u0430", "\u4e00", "\u2160", "\u24b6", "\u200b", "\n"),
    ]
)


@HYPOTHESIS
@example("a", [], ["k", "a"], 40, [" ", "a"])  # a whole word after dozens of near misses
@example("ss", ["\u00df"], ["s", "\u00df"], 50, [])
@given(
    st.sampled_from(["a", "k", "ss", "\u00e9", "a b", "c++", "+", "ak", "\u4e00", "1"]),
    st.lists(_EDGES, max_size=30),
    st.lists(_EDGES, min_size=1, max_size=3),
    st.integers(min_value=0, max_value=60),
    st.lists(_EDGES, max_size=30),
)
def test_a_word_matches_exactly_where_an_re2_whole_word_pattern_does(
    text: str, head: list[str], unit: list[str], times: int, tail: list[str]
) -> None:
    # The whole-word rule as a pattern: the word's text between characters that are no
    # Unicode letter, digit or "_" (or the edges). Matching looks at the edges of each
    # occurrence instead, or, past a few dozen occurrences, runs this very pattern.
    prompt = "".join(head) + "".join(unit) * times + "".join(tail)
    folded = normalize_prompt(prompt)[:MAX_PROMPT_CHARS]
    forms = (folded, skeleton(folded))
    texts = (normalize_word(text), skeleton(normalize_word(text)))
    expected = any(
        compile_regex(
            r"(?:^|[^\pL\pN_])(?:"
            + r"[\s\p{Z}]+".join(re2.escape(part) for part in body.split())
            + r")(?:[^\pL\pN_]|$)"
        ).search(form)
        is not None
        for body, form in zip(texts, forms, strict=True)
    )
    rule = word(text)
    assert (check_prompt_blocked(prompt, [rule]) == rule) is expected
