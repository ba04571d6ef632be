"""One way to change a test world's settings: ``@pytest.mark.settings(**overrides)``."""

from __future__ import annotations

from typing import Any

import pytest


def overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The keyword arguments of the test's ``settings`` marker (nearest one wins)."""
    marker = request.node.get_closest_marker("settings")
    return dict(marker.kwargs) if marker else {}
