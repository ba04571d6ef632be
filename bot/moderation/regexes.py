"""Vetting a moderator's regex before it is stored: it must never be able to hang the bot.

:func:`validate_regex` rejects the shapes that make Python's backtracking ``re`` engine slow
(nested or overlapping quantifiers, backreferences, ...) from the parse tree alone, and
:func:`vet_regex` then runs the pattern against adversarial prompts of the longest allowed
length in a separate process that is killed when it overruns its time budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import re
import string
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

MAX_PROMPT_CHARS = 1900
"""The longest prompt /animate accepts; regex rules are only ever run on this much text."""
MAX_REGEX_CHARS = 200

# -- static regex check -------------------------------------------------------------------

# The regex parser is private but has been stable for decades; only its output is read here.
_parser: Any = importlib.import_module("re._parser")

_N = MAX_PROMPT_CHARS
# Worst-case backtracking steps allowed for one search over a prompt of _N characters, in the
# cost model of _Analysis.cost(): three times a single ".*" (which costs _N * _N), about a
# tenth of a second.
_COST_LIMIT = 3 * _N * _N
# Sample characters that stand in for "every character" when sets of characters are compared.
_UNIVERSE: frozenset[str] = frozenset(string.printable) | frozenset(
    "éÉßøÆжЖ中日한٣१\u00a0\u2003😀İı\u212a"
)

_EXAMPLES = {
    "nested": "a repeated group that contains another quantifier, like (a+)+ or (\\w+\\s?)*",
    "alternation": "a repeated group whose alternatives can match the same text, like (a|ab)*",
    "empty_loop": "a repeated part that can match nothing, like (a?)* or (\\b)+",
    "overlap": (
        "quantifiers that can match the same text one after another, like .*.* or \\s+\\s*x "
        "(make them match different characters; to require several words anywhere in the "
        "prompt, use look-aheads such as (?=.*cat)(?=.*dog))"
    ),
}


def _fold(ch: str) -> set[str]:
    # Single characters only: "ß".upper() is "SS", which re's case folding ignores too.
    return {f for f in (ch, ch.lower(), ch.upper(), ch.casefold()) if len(f) == 1}


def _literal_set(code: int) -> frozenset[str]:
    folded = _fold(chr(code))
    return frozenset(u for u in _UNIVERSE if _fold(u) & folded) | frozenset(folded)


def _category_has(category: str, ch: str) -> bool:
    if "DIGIT" in category:
        found = ch.isdecimal()
    elif "SPACE" in category:
        found = ch.isspace()
    elif "WORD" in category:
        found = ch.isalnum() or ch == "_"
    else:
        found = ch in ("\n", "\r")  # line-break categories
    return found != ("NOT_" in category)


def _class_set(items: Sequence[tuple[Any, Any]]) -> frozenset[str]:
    """The sample characters an ``IN`` (character class) node matches, case-insensitively."""
    negate = False
    members: set[str] = set()
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            members |= _literal_set(av)
        elif name == "RANGE":
            low, high = av
            members |= {u for u in _UNIVERSE if any(low <= ord(f) <= high for f in _fold(u))}
        elif name == "CATEGORY":
            members |= {u for u in _UNIVERSE if _category_has(str(av), u)}
        else:
            # CHARSET/BIGCHARSET only appear after compilation; treat anything else as "any".
            members |= _UNIVERSE
    return _UNIVERSE - members if negate else frozenset(members)


@dataclass(frozen=True)
class _Shape:
    """What a piece of a pattern can do, as far as backtracking cost is concerned."""

    chars: frozenset[str]
    """Sample characters the piece can consume."""
    first: frozenset[str]
    """Sample characters the piece can start with."""
    nullable: bool
    """True when the piece can match the empty string."""
    choices: tuple[int, ...] = ()
    """Ids of the variable pieces (quantifiers, ambiguous alternations) it consumes through."""
    variable: bool = False
    """True when anything inside, look-arounds included, can match in more than one way."""
    lookarounds: tuple[int, ...] = ()
    """Ids of look-arounds inside that scan with a quantifier: each costs a pass per try."""


_EMPTY = _Shape(frozenset(), frozenset(), nullable=True)


class _Analysis:
    """Walks a parse tree, rejecting dangerous shapes and estimating the worst backtracking."""

    def __init__(self) -> None:
        self.sets: list[frozenset[str]] = []
        self.counts: list[int] = []
        self.parent: list[int] = []

    def _new_choice(self, chars: frozenset[str], count: int) -> int:
        self.sets.append(chars)
        self.counts.append(max(1, min(count, _N)))
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def _root(self, index: int) -> int:
        while self.parent[index] != index:
            self.parent[index] = self.parent[self.parent[index]]
            index = self.parent[index]
        return index

    def _link(self, a: int, b: int) -> None:
        self.parent[self._root(a)] = self._root(b)

    def cost(self) -> int:
        """Backtracking steps of one search over a prompt of the longest allowed length.

        Per start position, a variable piece that can trade characters with no other costs at
        most a pass over the prompt (together they cover the prompt at most once), while a
        group of pieces that can trade characters with each other multiplies their choices.
        """
        groups: dict[int, int] = {}
        sizes: dict[int, int] = {}
        for index, count in enumerate(self.counts):
            root = self._root(index)
            groups[root] = groups.get(root, 1) * count
            sizes[root] = sizes.get(root, 0) + 1
        tangled = sum(product for root, product in groups.items() if sizes[root] > 1)
        return _N * (_N + tangled)

    def sequence(self, items: Iterable[tuple[Any, Any]], in_loop: bool) -> _Shape:
        shapes = [self.item(op, av, in_loop) for op, av in items]
        # Two variable pieces can trade characters when they share one and either of them
        # can also swallow something that must stand between them (every piece in between
        # can match one of its characters; optional pieces may vanish). A look-around that
        # scans is run again for every way the pieces before it can match.
        for j, later in enumerate(shapes):
            between: list[frozenset[str]] = []
            for earlier in reversed(shapes[:j]):
                for a in earlier.choices:
                    for look in later.lookarounds:
                        self._link(a, look)
                    for b in later.choices:
                        if self.sets[a] & self.sets[b] and (
                            self._absorbs(a, between) or self._absorbs(b, between)
                        ):
                            self._link(a, b)
                if not earlier.nullable:
                    between.append(earlier.chars)
        first: frozenset[str] = frozenset()
        nullable = True
        for shape in shapes:
            first |= shape.first
            if not shape.nullable:
                nullable = False
                break
        return _Shape(
            chars=frozenset().union(*(s.chars for s in shapes)),
            first=first,
            nullable=nullable,
            choices=tuple(c for s in shapes for c in s.choices),
            variable=any(s.variable for s in shapes),
            lookarounds=tuple(look for s in shapes for look in s.lookarounds),
        )

    def _absorbs(self, piece: int, between: list[frozenset[str]]) -> bool:
        return all(chars & self.sets[piece] for chars in between)

    def item(self, op: Any, av: Any, in_loop: bool) -> _Shape:
        name = str(op)
        if name == "LITERAL":
            chars = _literal_set(av)
            return _Shape(chars, chars, nullable=False)
        if name == "NOT_LITERAL":
            chars = _UNIVERSE - _literal_set(av)
            return _Shape(chars, chars, nullable=False)
        if name == "ANY":
            return _Shape(_UNIVERSE, _UNIVERSE, nullable=False)
        if name == "IN":
            chars = _class_set(av)
            return _Shape(chars, chars, nullable=False)
        if name == "AT":
            return _EMPTY
        if name == "SUBPATTERN":
            return self.sequence(av[3], in_loop)
        if name == "ATOMIC_GROUP":
            return self.sequence(av, in_loop)
        if name in ("ASSERT", "ASSERT_NOT"):
            # A look-around consumes nothing, so its quantifiers never trade characters with
            # the ones around it; they still count as variable for the nesting rule.
            inner = self.sequence(av[1], in_loop=False)
            if in_loop and inner.variable:
                raise ValueError(f"Not allowed: {_EXAMPLES['nested']}.")
            looks: tuple[int, ...] = ()
            if inner.choices:
                scan = max(self.counts[c] for c in inner.choices)
                looks = (self._new_choice(_UNIVERSE, scan),)
            return _Shape(
                frozenset(),
                frozenset(),
                nullable=True,
                variable=inner.variable,
                lookarounds=looks,
            )
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            return self._repeat(av, in_loop)
        if name == "BRANCH":
            return self._branch(av[1], in_loop)
        if name in ("GROUPREF", "GROUPREF_EXISTS"):
            raise ValueError(
                "Backreferences such as \\1 or (?P=name) and conditionals are not allowed."
            )
        raise ValueError(f"The pattern uses a feature the bot cannot check ({name}).")

    def _repeat(self, av: Any, in_loop: bool) -> _Shape:
        low, high, sub = av
        loops = high > 1
        body = self.sequence(sub, in_loop=in_loop or loops)
        if loops and body.nullable:
            raise ValueError(f"Not allowed: {_EXAMPLES['empty_loop']}.")
        if high == low:
            # A fixed count ({3}) never backtracks into itself.
            return _Shape(
                body.chars,
                body.first,
                body.nullable or low == 0,
                body.choices,
                body.variable,
                body.lookarounds,
            )
        if in_loop:
            raise ValueError(f"Not allowed: {_EXAMPLES['nested']}.")
        unbounded = high == _parser.MAXREPEAT or high - low >= _N
        choice = self._new_choice(body.chars, _N if unbounded else high - low + 1)
        return _Shape(
            chars=body.chars,
            first=body.first,
            nullable=body.nullable or low == 0,
            choices=(*body.choices, choice),
            variable=True,
            lookarounds=body.lookarounds,
        )

    def _branch(self, branches: Sequence[Any], in_loop: bool) -> _Shape:
        shapes = [self.sequence(branch, in_loop) for branch in branches]
        ambiguous = any(s.nullable for s in shapes) or any(
            a.first & b.first for i, a in enumerate(shapes) for b in shapes[i + 1 :]
        )
        chars = frozenset().union(*(s.chars for s in shapes))
        choices = tuple(c for s in shapes for c in s.choices)
        if ambiguous:
            if in_loop:
                raise ValueError(f"Not allowed: {_EXAMPLES['alternation']}.")
            # An empty alternative can "match" next to anything, so it overlaps everything.
            trade = chars | (_UNIVERSE if any(s.nullable for s in shapes) else frozenset())
            choices = (*choices, self._new_choice(trade, len(shapes)))
        return _Shape(
            chars=chars,
            first=frozenset().union(*(s.first for s in shapes)),
            nullable=any(s.nullable for s in shapes),
            choices=choices,
            variable=ambiguous or any(s.variable for s in shapes),
            lookarounds=tuple(look for s in shapes for look in s.lookarounds),
        )


def validate_regex(pattern: str) -> None:
    """Reject a blocklist regex that is invalid or could make matching slow; fast and pure.

    Raises ``ValueError`` with a message for the moderator. Refused: empty or longer than
    :data:`MAX_REGEX_CHARS`; anything ``re`` cannot compile; backreferences and conditionals;
    a pattern that matches the empty text (it would refuse every prompt); and the shapes
    that make a backtracking engine blow up: nested quantifiers (``(a+)+``, ``(.*)*``),
    repeated alternations whose options overlap (``(a|a)*``, ``(a|ab)*``), repeats of
    something that can be empty, and chains of quantifiers that can trade characters between
    them whose combined worst case on a :data:`MAX_PROMPT_CHARS`-character prompt is too
    high (``.*.*x``, ``\\s+\\s+x``, ``a?a?a?...``).
    """
    if not pattern.strip():
        raise ValueError("A blocked pattern cannot be empty.")
    if len(pattern) > MAX_REGEX_CHARS:
        raise ValueError(f"A blocked pattern can be at most {MAX_REGEX_CHARS} characters long.")
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
        tree = _parser.parse(pattern, re.IGNORECASE)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        reason = exc.msg if isinstance(exc, re.error) else str(exc)
        raise ValueError(f"This is not a valid regular expression: {reason}.") from None
    analysis = _Analysis()
    analysis.sequence(list(tree), in_loop=False)
    if compiled.search("") is not None:
        raise ValueError("The pattern matches an empty text, so it would refuse every prompt.")
    if analysis.cost() > _COST_LIMIT:
        raise ValueError(f"Not allowed: {_EXAMPLES['overlap']}.")


# -- runtime probe ------------------------------------------------------------------------

_PROBE_SCRIPT = """
import json, re, sys
data = json.loads(sys.stdin.read())
matcher = re.compile(data["pattern"], re.IGNORECASE)
print("ready", flush=True)
for text in data["inputs"]:
    matcher.search(text)
    print("done", flush=True)
"""

_MAX_PROBE_INPUTS = 160


def _pieces(items: Iterable[tuple[Any, Any]], chars: set[str], words: list[str]) -> None:
    """Collect the literal runs ("words") and one sample character of every class."""
    run: list[str] = []
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            run.append(chr(av))
            chars.add(chr(av))
            continue
        if run:
            words.append("".join(run))
            run = []
        if name in ("IN", "NOT_LITERAL", "ANY"):
            if name == "IN":
                options = _class_set(av)
            elif name == "NOT_LITERAL":
                options = _UNIVERSE - _literal_set(av)
            else:
                options = _UNIVERSE
            preferred = [c for c in "a0 _-.,!xz" if c in options]
            chars.update(preferred[:2] or sorted(options)[:1])
        elif name == "SUBPATTERN":
            _pieces(av[3], chars, words)
        elif name == "ATOMIC_GROUP":
            _pieces(av, chars, words)
        elif name in ("ASSERT", "ASSERT_NOT"):
            _pieces(av[1], chars, words)
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            _pieces(av[2], chars, words)
        elif name == "BRANCH":
            for branch in av[1]:
                _pieces(branch, chars, words)
    if run:
        words.append("".join(run))


def adversarial_inputs(pattern: str, length: int = MAX_PROMPT_CHARS) -> list[str]:
    """Prompts of ``length`` characters built to make ``pattern`` backtrack as much as it can.

    Runs of each character the pattern mentions, of each literal word in it, of the words
    joined in order (with the last one left out, so the match keeps failing late), and of
    pairs of characters.
    """
    chars: set[str] = set("a ")
    words: list[str] = []
    _pieces(list(_parser.parse(pattern, re.IGNORECASE)), chars, words)
    seeds: list[str] = sorted(chars)
    seeds += words
    if len(words) > 1:
        seeds += ["".join(words[:-1]), " ".join(words[:-1]) + " ", "".join(words)]
    seeds += [a + b for a, b in pairwise(sorted(chars))]
    seeds += [w + c for w in words for c in sorted(chars)[:4]]
    inputs: list[str] = []
    for seed in dict.fromkeys(s for s in seeds if s):
        text = (seed * (length // len(seed) + 1))[:length]
        inputs.append(text)
        inputs.append(text[:-1] + "\x00")
        if len(inputs) >= _MAX_PROBE_INPUTS:
            break
    return inputs


async def probe_regex(pattern: str, *, per_input: float = 0.5, budget: float = 10.0) -> None:
    """Time ``pattern`` on adversarial prompts in a separate Python process.

    Raises ``ValueError`` as soon as one search runs longer than ``per_input`` seconds, or
    the whole run longer than ``budget`` seconds; the process is then killed, so nothing keeps
    spinning. The pattern must already compile.
    """
    inputs = adversarial_inputs(pattern)
    payload = json.dumps({"pattern": pattern, "inputs": inputs}).encode()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-S",
        "-c",
        _PROBE_SCRIPT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        async with asyncio.timeout(budget):
            process.stdin.write(payload)
            await process.stdin.drain()
            process.stdin.close()
            if await process.stdout.readline() != b"ready\n":
                raise RuntimeError(f"the regex probe could not start on {pattern!r}")
            for _ in inputs:
                # Each line reports one finished search; silence means one is still running.
                line = await asyncio.wait_for(process.stdout.readline(), per_input)
                if line != b"done\n":
                    raise RuntimeError(f"the regex probe stopped early on {pattern!r}")
    except TimeoutError:
        raise ValueError(
            "The pattern is too slow on a long prompt, so it could stall the bot."
        ) from None
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await asyncio.shield(process.wait())


async def vet_regex(pattern: str) -> str:
    """:func:`validate_regex`, then :func:`probe_regex`; the pattern, ready to store."""
    validate_regex(pattern)
    await probe_regex(pattern)
    return pattern
