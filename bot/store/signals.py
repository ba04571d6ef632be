"""Signals inside one process: the SQLite store's (one process per database)."""

from __future__ import annotations

import logging

from bot.store.coordination import SignalHandler

__all__ = ["LocalSignals", "deliver"]

log = logging.getLogger(__name__)


def deliver(handlers: list[SignalHandler], topic: str, text: str) -> None:
    """Call every handler; one that fails is logged and never stops the others."""
    for handler in list(handlers):
        try:
            handler(topic, text)
        except Exception:
            log.exception("a handler of signal %r failed", topic)


class LocalSignals:
    """Signals delivered to the handlers of this process only."""

    _handlers: list[SignalHandler]

    def __init__(self) -> None:
        self._handlers = []

    async def send_signal(self, topic: str, text: str = "") -> None:
        """Tell this process's handlers (there is no other process on the database)."""
        deliver(self._handlers, topic, text)

    async def listen(self, handler: SignalHandler) -> None:
        """Call ``handler`` for every signal from now on."""
        self._handlers.append(handler)
