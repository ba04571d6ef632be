"""Logging set-up with a last line of defence: secrets are masked in every record.

Two formats: ``text`` for a person at a terminal, ``json`` for a log shipper (one JSON object
per line). A job's task binds its ids (:func:`bind`), so every line logged while it runs
carries ``job_id``, ``guild_id`` and, once known, the provider's ``request_id``; a call may
also pass them as ``extra``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

REDACTED = "[redacted]"
CONTEXT_FIELDS = ("job_id", "request_id", "guild_id")
"""The ids a JSON line carries when they are known."""

_context: ContextVar[Mapping[str, Any]] = ContextVar(
    "seedance_log_context", default=MappingProxyType({})
)


def bind(**fields: Any) -> None:
    """Add ids to every record logged from this task (and the tasks it starts) on."""
    known = {k: v for k, v in fields.items() if k in CONTEXT_FIELDS and v is not None}
    _context.set({**_context.get(), **known})


def bound() -> Mapping[str, Any]:
    """The ids bound in this task."""
    return _context.get()


class RedactSecrets(logging.Filter):
    """Replaces any secret that reaches a log line, wherever it came from.

    It never raises into the code that logged: a record it cannot render (arguments that do
    not fit the message, an object whose ``str`` fails) is still logged, as its template with
    the secrets masked and a note, never with the raw arguments.
    """

    def __init__(self, secrets: Iterable[str | None]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._redact(record)
        except Exception as exc:
            template = self._mask(str(record.msg) if _str_works(record.msg) else "")
            record.msg = f"{template} [log record not rendered: {type(exc).__name__}]"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True

    def _mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def _redact(self, record: logging.LogRecord) -> None:
        # Rendered here, once, even without secrets: a record that cannot be rendered is
        # caught here instead of inside the handler.
        message = record.getMessage()
        text = self._mask(message)
        if self._secrets and record.exc_info and record.exc_info[1] is not None:
            rendered = logging.Formatter().formatException(record.exc_info)
            if any(secret in rendered for secret in self._secrets):
                text = f"{text}\n{self._mask(rendered)}"
                record.exc_info = None
                record.exc_text = None
        if text != message or record.args:
            record.msg, record.args = text, None


def _str_works(value: object) -> bool:
    try:
        str(value)
    except Exception:
        return False
    return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message, the known ids, and the
    traceback as ``exc`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = _context.get()
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            value = context.get(name) if value is None else value
            if value is not None:
                entry[name] = value if isinstance(value, int | str) else str(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str, secrets: Iterable[str | None] = (), *, fmt: str = "text") -> None:
    """Log to standard error in ``fmt`` (``text`` or ``json``), secrets masked."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S"
            )
        )
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # discord.py's gateway chatter is noise at INFO.
    logging.getLogger("discord.gateway").setLevel(max(logging.WARNING, root.level))
