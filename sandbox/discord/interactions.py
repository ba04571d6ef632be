"""Interactions: their lifecycle on the emulated Discord, and handles tests hold on them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import JSON

APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
MODAL_SUBMIT = 5

# Interaction callback types.
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
MODAL = 9


class InteractionFailed(Exception):
    """The bot did not acknowledge the interaction in time ("The application did not respond")."""


@dataclass
class RejectedCall:
    """A call the bot made for an interaction that the emulator refused, as Discord would."""

    method: str
    route: str
    status: int
    code: int
    message: str


@dataclass
class InteractionRecord:
    """The emulator's state for one interaction."""

    id: int
    token: str
    type: int
    application_id: int
    guild_id: int | None
    channel_id: int
    user_id: int
    name: str | None
    custom_id: str | None
    source_message_id: int | None
    payload: JSON
    created_at: float = field(default_factory=time.monotonic)
    acknowledged_at: float | None = None
    failed: bool = False
    response: JSON | None = None
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    modal: JSON | None = None
    modal_submitted: bool = False
    command_type: int = 1
    rejected: list[RejectedCall] = field(default_factory=list)
    deadline: asyncio.TimerHandle | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def acknowledged(self) -> bool:
        """Whether an initial response was accepted."""
        return self.acknowledged_at is not None

    @property
    def response_type(self) -> int | None:
        """The callback type of the initial response."""
        return None if self.response is None else int(self.response["type"])

    def touch(self) -> None:
        """Wake everyone waiting for a change."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self) -> None:
        """Wait for the next change."""
        await self._changed.wait()


class InteractionHandle:
    """A test's or the page's view of one interaction it started."""

    def __init__(self, record: InteractionRecord, render: Callable[[int], JSON | None]) -> None:
        self._record = record
        self._render = render

    def __repr__(self) -> str:
        what = self._record.name or self._record.custom_id
        return f"<InteractionHandle id={self.id} {what!r} response_type={self.response_type}>"

    @property
    def id(self) -> int:
        """The interaction id."""
        return self._record.id

    @property
    def token(self) -> str:
        """The interaction token."""
        return self._record.token

    @property
    def payload(self) -> JSON:
        """The INTERACTION_CREATE payload the bot received."""
        return self._record.payload

    @property
    def user_id(self) -> int:
        """Who interacted."""
        return self._record.user_id

    @property
    def channel_id(self) -> int:
        """Where."""
        return self._record.channel_id

    @property
    def acknowledged(self) -> bool:
        """Whether the bot answered in time."""
        return self._record.acknowledged

    @property
    def failed(self) -> bool:
        """Whether the interaction died unanswered ("The application did not respond")."""
        return self._record.failed

    @property
    def response(self) -> JSON | None:
        """The initial response ``{"type": ..., "data": ...}`` as accepted."""
        return self._record.response

    @property
    def response_type(self) -> int | None:
        """The initial response's callback type (4, 5, 6, 7 or 9)."""
        return self._record.response_type

    @property
    def deferred(self) -> bool:
        """Whether the bot deferred (type 5 or 6)."""
        return self.response_type in (DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE_MESSAGE)

    @property
    def modal(self) -> JSON | None:
        """The modal the bot opened, if any."""
        return self._record.modal

    @property
    def rejected(self) -> list[RejectedCall]:
        """Calls for this interaction the emulator refused (late callbacks, dead tokens...)."""
        return list(self._record.rejected)

    def original(self) -> JSON | None:
        """The original response message in its current state."""
        mid = self._record.original_message_id
        return None if mid is None else self._render(mid)

    @property
    def ephemeral(self) -> bool:
        """Whether the original response is visible only to the user."""
        message = self.original()
        return bool(message and int(message.get("flags", 0)) & 64)

    @property
    def content(self) -> str | None:
        """The original response's text."""
        message = self.original()
        return None if message is None else str(message.get("content", ""))

    @property
    def embeds(self) -> list[JSON]:
        """The original response's embeds."""
        message = self.original()
        return [] if message is None else list(message.get("embeds", []))

    @property
    def components(self) -> list[JSON]:
        """The original response's components."""
        message = self.original()
        return [] if message is None else list(message.get("components", []))

    def followups(self) -> list[JSON]:
        """Follow-up messages, current state, oldest first (deleted ones left out)."""
        found = (self._render(mid) for mid in self._record.followup_ids)
        return [m for m in found if m is not None]

    # The driver API mirrors asyncio.wait_for: a timeout in seconds on each wait.
    async def wait_response(self, timeout: float = 5.0) -> JSON:  # noqa: ASYNC109
        """The initial response; raises ``InteractionFailed`` if the interaction died first."""
        response: JSON = await self.wait_until(lambda h: h.response, timeout)
        return response

    async def wait_until(
        self,
        predicate: Callable[[InteractionHandle], Any],
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> Any:
        """Wait until ``predicate(handle)`` is truthy and return its value.

        Raises ``InteractionFailed`` when the interaction died unanswered, ``TimeoutError``
        after ``timeout`` seconds.
        """
        try:
            async with asyncio.timeout(timeout):
                while True:
                    value = predicate(self)
                    if value:
                        return value
                    if self._record.failed:
                        raise InteractionFailed(
                            f"interaction {self.id} was not acknowledged in time"
                        )
                    await self._record.wait_change()
        except TimeoutError:
            raise TimeoutError(f"interaction {self.id}: condition not met in {timeout} s") from None

    async def wait_failed(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until the interaction is dead unanswered ("The application did not respond")."""
        try:
            async with asyncio.timeout(timeout):
                while not self._record.failed:
                    if self._record.acknowledged:
                        raise AssertionError(f"interaction {self.id} was acknowledged")
                    await self._record.wait_change()
        except TimeoutError:
            raise TimeoutError(f"interaction {self.id} did not fail within {timeout} s") from None
