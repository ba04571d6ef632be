"""Fresh signatures for Discord attachment URLs a job stored, which expire after about a day.

Discord's ``POST /attachments/refresh-urls`` takes up to 50 attachment URLs and answers each
with a newly signed one; discord.py has no method for it, so the route is called directly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import discord
from discord.http import Route

log = logging.getLogger(__name__)

MAX_URLS = 50
"""The most URLs Discord refreshes in one call."""


async def refreshed_urls(client: discord.Client, urls: Sequence[str]) -> dict[str, str]:
    """Each given URL mapped to its freshly signed form; the ones Discord did not answer for
    are left out (a refusal leaves the map empty: the caller keeps what it had)."""
    wanted = list(dict.fromkeys(u for u in urls if u))[:MAX_URLS]
    if not wanted:
        return {}
    try:
        answer: Any = await client.http.request(
            Route("POST", "/attachments/refresh-urls"), json={"attachment_urls": wanted}
        )
    except discord.HTTPException as exc:
        log.info("Discord did not refresh %d attachment URL(s): %s", len(wanted), exc)
        return {}
    found: dict[str, str] = {}
    entries = answer.get("refreshed_urls") if isinstance(answer, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        original, fresh = entry.get("original"), entry.get("refreshed")
        if original in wanted and isinstance(fresh, str) and fresh:
            found[original] = fresh
    return found
