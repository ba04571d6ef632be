"""A fan-out of what happens in the emulator, for tests and for the sandbox page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType

from .errors import JSON


@dataclass(frozen=True)
class EmulatorEvent:
    """Something a person in the channel would notice.

    ``type`` is one of ``message_create``, ``message_update``, ``message_delete``,
    ``interaction_create``, ``interaction_response``, ``interaction_failed``,
    ``commands_synced``, ``bot_status``. ``visible_to`` is set for ephemeral messages
    (only that user sees them).
    """

    type: str
    data: JSON
    channel_id: int | None = None
    visible_to: int | None = None

    def to_json(self) -> JSON:
        """The event as the sandbox page receives it."""
        return {
            "type": self.type,
            "channel_id": None if self.channel_id is None else str(self.channel_id),
            "visible_to": None if self.visible_to is None else str(self.visible_to),
            "data": self.data,
        }


class Subscription:
    """A stream of events from the moment of subscribing; iterate it or ``await get()``."""

    def __init__(self, hub: EventHub) -> None:
        self._hub = hub
        self.queue: asyncio.Queue[EmulatorEvent] = asyncio.Queue()

    async def get(self) -> EmulatorEvent:
        """The next event."""
        return await self.queue.get()

    def close(self) -> None:
        """Stop receiving events."""
        self._hub._subscribers.discard(self)

    def __aiter__(self) -> AsyncIterator[EmulatorEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[EmulatorEvent]:
        while True:
            yield await self.queue.get()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class EventHub:
    """Delivers every published event to every open subscription."""

    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    def subscribe(self) -> Subscription:
        """Open a subscription."""
        subscription = Subscription(self)
        self._subscribers.add(subscription)
        return subscription

    def publish(self, event: EmulatorEvent) -> None:
        """Hand an event to every subscriber."""
        for subscription in list(self._subscribers):
            subscription.queue.put_nowait(event)
