"""Component ids: Discord numbers every component of a message (or modal) it stores."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from .errors import JSON

_CHILD_KEYS = ("components", "component", "accessory")


def _walk(components: list[Any]) -> Iterator[JSON]:
    """Every component, parents before their children, in order."""
    for component in components:
        if not isinstance(component, dict):
            continue
        yield component
        for key in _CHILD_KEYS:
            inner = component.get(key)
            if isinstance(inner, list):
                yield from _walk(inner)
            elif isinstance(inner, dict):
                yield from _walk([inner])


def assign_ids(components: list[Any]) -> list[Any]:
    """A copy with every component's ``id`` filled in, as Discord fills it.

    Components > Reference, "Anatomy of a Component": "The id ... must be unique within the
    message and is generated sequentially if left empty. Generation of ids won't use another
    id that exists in the message ... Sending components with an id of 0 is allowed but will
    be treated as empty and replaced by the API."
    """
    result = copy.deepcopy(components)
    taken = {c["id"] for c in _walk(result) if isinstance(c.get("id"), int) and c["id"] > 0}
    next_id = 1
    for component in _walk(result):
        current = component.get("id")
        if isinstance(current, int) and current > 0:
            continue
        while next_id in taken:
            next_id += 1
        component["id"] = next_id
        taken.add(next_id)
    return result
