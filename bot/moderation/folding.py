"""The two forms a prompt is matched in: *folded* and its *skeleton*.

The folded form is NFKC with invisible format characters and combining marks removed; the
skeleton adds case folding and Unicode's UTS #39 confusables mapping, so a Cyrillic and a Latin
"a" are one letter. Every step is a C-level pass over the text (``unicodedata.normalize``,
``str.translate`` with a table built once, when this module is imported, or ``str.replace``),
and a step with nothing to do is skipped: folding holds the GIL, so the less it does, the less
the event loop waits while a worker thread folds a 1,900-character prompt.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from confusable_homoglyphs import confusables

_DIRECTION_MARKS = str.maketrans("", "", "\u200e\u200f")

# Where Unicode assigns characters outside the first two planes: ideographs (letters) in
# planes 2 and 3, tags and variation selectors in plane 14, private use in 15 and 16. Format
# characters and marks live only in planes 0 and 1 and the first block of plane 14; a test
# checks that against every code point.
_CODE_POINTS_WITH_MARKS = (range(0x20000), range(0xE0000, 0xE1000))


def _deleting(categories: frozenset[str], spans: Iterable[range]) -> dict[int, None]:
    """A ``str.translate`` table deleting every character of ``categories``."""
    return {
        code: None
        for span in spans
        for code in span
        if unicodedata.category(chr(code)) in categories
    }


FORMAT_CHARACTERS = _deleting(frozenset({"Cf"}), _CODE_POINTS_WITH_MARKS)
"""Invisible format characters (zero-width spaces and joiners, bidi controls, tags)."""
COMBINING_MARKS = _deleting(frozenset({"Mn", "Me"}), _CODE_POINTS_WITH_MARKS)
"""Non-spacing and enclosing marks: accents, strikethrough overlays, "zalgo"."""
_FORMAT_CHARACTERS = frozenset(map(chr, FORMAT_CHARACTERS))
_COMBINING_MARKS = frozenset(map(chr, COMBINING_MARKS))
_FEW = 4
# Up to this many different characters to delete, one str.replace each beats str.translate,
# which looks every character of the text up in its table.


def _delete(text: str, chars: frozenset[str], table: dict[int, None]) -> str:
    """``text.translate(table)`` (which deletes ``chars``), done the cheapest way."""
    if text.isascii():
        return text  # no format character or mark is ASCII
    present = chars.intersection(text)
    if len(present) > _FEW:
        return text.translate(table)
    for char in present:
        text = text.replace(char, "")
    return text


def prototypes(data: Mapping[str, Any]) -> dict[int, str]:
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


PROTOTYPES = prototypes(confusables.confusables_data)
"""Look-alike letter -> the letter it is a look-alike of, as a ``str.translate`` table."""


def _fold_once(text: str) -> str:
    if text.isascii():
        return text  # NFKC, NFD and NFC leave ASCII as it is, and it has nothing to delete
    text = _delete(unicodedata.normalize("NFKC", text), _FORMAT_CHARACTERS, FORMAT_CHARACTERS)
    bare = _delete(unicodedata.normalize("NFD", text), _COMBINING_MARKS, COMBINING_MARKS)
    return unicodedata.normalize("NFC", bare)


def _fixpoint(step: Callable[[str], str], text: str) -> str:
    # Each step can expose one more thing to fold (NFKC of a stripped letter, a prototype
    # that is itself a compatibility form); a few rounds reach the fixed point.
    for _ in range(6):
        folded = step(text)
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


def _skeleton_once(folded: str) -> str:
    return normalize_prompt(folded.casefold().translate(PROTOTYPES).casefold())


def skeleton(text: str) -> str:
    """The UTS #39 skeleton of the folded, case-folded text: look-alike letters become one.

    Idempotent; ``skeleton(a) == skeleton(b)`` when ``a`` and ``b`` differ only in look-alike
    letters ("dragon" spelled with a Cyrillic "a", and "dragon"), case, invisible characters
    or marks.
    """
    return skeleton_of_folded(normalize_prompt(text))


def skeleton_of_folded(folded: str) -> str:
    """:func:`skeleton` of a text :func:`normalize_prompt` already folded (saves folding it
    again)."""
    return _fixpoint(_skeleton_once, folded)
