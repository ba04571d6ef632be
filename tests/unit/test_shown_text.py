"""What the bot writes of a member's text: never live markdown, never reordered by bidi controls."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from cogs._render import BIDI_CONTROLS, shown_line, shown_text

LIVE_LINK = re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\((?!\\)")
LIVE_HEADING = re.compile(r"(?m)^\s*(>>> )?(?<!\\)#{1,3}\s")

HOSTILE = (
    "\u202e[free nitro](https://evil.example) and [more](<https://evil.example/x>)\n"
    "# Big heading\n-# small print\n1. a list\n> quote <@123> @everyone `code` **bold**"
)


def live_markdown(text: str) -> list[str]:
    """What a Discord client would render as markup instead of text."""
    found = []
    if LIVE_LINK.search(text):
        found.append("masked link")
    if LIVE_HEADING.search(text):
        found.append("heading")
    if re.search(r"(?<!\\)<@", text):
        found.append("mention")
    if any(ch in text for ch in BIDI_CONTROLS):
        found.append("bidi control")
    return found


def test_masked_links_headings_and_bidi_controls_render_as_text() -> None:
    shown = shown_text(HOSTILE, 1000)
    assert live_markdown(shown) == []
    # Every word is still there for a reader.
    for word in ("free nitro", "evil.example", "Big heading", "small print", "quote"):
        assert word in shown.replace("\\", "")


def test_a_clipped_prompt_never_ends_in_half_an_escape() -> None:
    shown = shown_text("a" * 10 + "[" * 50, 20)
    assert len(shown) <= 20
    assert not shown.rstrip("…").endswith("\\") or shown.rstrip("…").endswith("\\\\")


def test_a_line_never_breaks_out_of_its_quote() -> None:
    line = shown_line("fine\n# heading\n[x](https://evil)", 80)
    assert "\n" not in line and live_markdown(line) == []


@given(st.text(max_size=300), st.integers(min_value=2, max_value=400))
def test_any_text_stays_inert_and_within_its_limit(text: str, limit: int) -> None:
    shown = shown_text(text, limit)
    assert len(shown) <= limit
    assert live_markdown(shown) == []
