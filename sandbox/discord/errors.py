"""Discord's API errors: HTTP status, JSON error code and message, as Discord sends them."""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]

# JSON error codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes).
GENERAL = 0
UNKNOWN_CHANNEL = 10003
UNKNOWN_GUILD = 10004
UNKNOWN_MEMBER = 10007
UNKNOWN_MESSAGE = 10008
UNKNOWN_USER = 10013
UNKNOWN_WEBHOOK = 10015
UNKNOWN_APPLICATION_COMMAND = 10063
UNKNOWN_INTERACTION = 10062
ENTITY_TOO_LARGE = 40005
ALREADY_ACKNOWLEDGED = 40060
MISSING_ACCESS = 50001
CANNOT_EDIT_OTHERS_MESSAGE = 50005
EMPTY_MESSAGE = 50006
CANNOT_MESSAGE_USER = 50007
MISSING_PERMISSIONS = 50013
INVALID_WEBHOOK_TOKEN = 50027
OLD_MESSAGE_EDITS = 30046
INVALID_FORM_BODY = 50035


class DiscordHTTPError(Exception):
    """An error answer of the emulated API: status code plus Discord's JSON error body."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        errors: JSON | None = None,
        *,
        extra: JSON | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> JSON:
        """The JSON body Discord sends with this error."""
        body: JSON = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class InvocationError(Exception):
    """A user action the Discord client would not allow (unknown command, bad option, ...)."""


def not_found(code: int, what: str) -> DiscordHTTPError:
    """404 with Discord's wording, e.g. ``not_found(UNKNOWN_MESSAGE, "Message")``."""
    return DiscordHTTPError(404, code, f"Unknown {what}")


def route_not_found() -> DiscordHTTPError:
    """The answer for a route the API does not have."""
    return DiscordHTTPError(404, GENERAL, "404: Not Found")


def unauthorized() -> DiscordHTTPError:
    """The answer for a missing or wrong bot token."""
    return DiscordHTTPError(401, GENERAL, "401: Unauthorized")


def missing_permissions() -> DiscordHTTPError:
    """403 Missing Permissions."""
    return DiscordHTTPError(403, MISSING_PERMISSIONS, "Missing Permissions")


def missing_access() -> DiscordHTTPError:
    """403 Missing Access (the bot cannot see the channel)."""
    return DiscordHTTPError(403, MISSING_ACCESS, "Missing Access")


def invalid_form(path: str, error_code: str, message: str) -> DiscordHTTPError:
    """400 Invalid Form Body with the nested ``errors`` object Discord builds.

    ``path`` is dotted, e.g. ``"embeds.0.description"``.
    """
    leaf: JSON = {"_errors": [{"code": error_code, "message": message}]}
    for part in reversed(path.split(".")):
        leaf = {part: leaf}
    return DiscordHTTPError(400, INVALID_FORM_BODY, "Invalid Form Body", leaf)


def entity_too_large() -> DiscordHTTPError:
    """413 for a file over the upload limit."""
    return DiscordHTTPError(413, ENTITY_TOO_LARGE, "Request entity too large")
