"""The model's list price, as ``GET /v1/models/{model_id}`` reports it, and what a credit buys.

RunComfy answers ``{"base_price_usd", "price_unit", "pricing_note"}``; its own ComfyUI nodes
read ``base_price_usd`` as the price of one unit and know the units ``second`` (of video) and
``output`` (one video). Anything else is no price the bot can use: it says nothing then.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_PER_VIDEO = frozenset({"output", "video", "request"})
_NOTE_CHARS = 300


@dataclass(frozen=True)
class ListPrice:
    """The provider's published price of the model."""

    base_usd: float
    unit: str
    note: str | None = None

    def clip_usd(self, duration: int) -> float | None:
        """The list price of one clip of ``duration`` seconds, when the unit allows saying."""
        if self.unit == "second":
            return self.base_usd * duration
        if self.unit in _PER_VIDEO:
            return self.base_usd
        return None


def parse_list_price(body: Any) -> ListPrice | None:
    """The price in a model answer, or None when it holds none the bot understands."""
    if not isinstance(body, Mapping):
        return None
    raw, unit = body.get("base_price_usd"), body.get("price_unit")
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        base = float(raw)
    except ValueError:
        return None
    if not math.isfinite(base) or base < 0 or not isinstance(unit, str):
        return None
    note = body.get("pricing_note")
    return ListPrice(
        base_usd=base,
        unit=unit.strip().lower(),
        note=note[:_NOTE_CHARS] if isinstance(note, str) and note.strip() else None,
    )


def usd_per_credit(
    price: ListPrice, costs: Mapping[str, Mapping[int, int]]
) -> tuple[float, str, int] | None:
    """An estimate of what one credit costs at list price: (USD, resolution, seconds) of the
    cheapest setting in the credit table, the one the list price is quoted for."""
    settings = [
        (credits, resolution, seconds)
        for resolution, by_seconds in costs.items()
        for seconds, credits in by_seconds.items()
        if credits > 0
    ]
    if not settings:
        return None
    credits, resolution, seconds = min(settings)
    clip = price.clip_usd(seconds)
    if clip is None:
        return None
    return clip / credits, resolution, seconds
