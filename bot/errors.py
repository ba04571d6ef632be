"""Errors whose message is safe to show a member as it is."""

from __future__ import annotations


class UserFacingError(Exception):
    """Raised where the member must be told something; `message` is shown verbatim."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
