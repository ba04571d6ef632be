"""Discord's REST rate limits: per-route buckets keyed by the major parameter, and the global one.

From the developer docs, "Topics > Rate Limits" (developers/topics/rate-limits.mdx):
- per-route limits "account for top-level resources within the path": channels
  (``channel_id``), guilds (``guild_id``) and webhooks (``webhook_id + webhook_token``);
- every answer carries ``X-RateLimit-Limit/-Remaining/-Reset/-Reset-After/-Bucket``;
  ``X-RateLimit-Scope`` (and ``X-RateLimit-Global``) come "only on HTTP 429 responses";
- a 429 body is ``{"message", "retry_after", "global"}`` with a ``Retry-After`` header;
- "All bots can make up to 50 requests per second" (global), and "Interaction endpoints
  are not bound to the bot's Global Rate Limit".
Discord documents no per-route numbers ("should not be hard coded"); the ones below are
those commonly observed by library authors, each marked so.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

from .clock import Clock
from .errors import JSON, OLD_MESSAGE_EDITS, DiscordHTTPError

GLOBAL_LIMIT = 50
GLOBAL_WINDOW = 1.0


@dataclass(frozen=True)
class Rule:
    """A bucket's size: ``limit`` requests per ``window`` seconds."""

    limit: int
    window: float


# Observed, undocumented: 5 messages per 5 s per channel (create, and edit likewise).
MESSAGE_RULE = Rule(5, 5.0)
# Observed, undocumented: deletes of one's own messages 5 per 1 s per channel.
DELETE_RULE = Rule(5, 1.0)
# Observed, undocumented: interaction webhook follow-ups and edits, a bucket of 5 (per 5 s).
WEBHOOK_RULE = Rule(5, 5.0)
# Routes with no observed limit get a generous bucket so every answer still has headers.
DEFAULT_RULE = Rule(50, 1.0)

_RULES: dict[tuple[str, str], Rule] = {
    ("POST", "/channels/{channel_id}/messages"): MESSAGE_RULE,
    ("PATCH", "/channels/{channel_id}/messages/{message_id}"): MESSAGE_RULE,
    ("DELETE", "/channels/{channel_id}/messages/{message_id}"): DELETE_RULE,
    ("POST", "/webhooks/{application_id}/{token}"): WEBHOOK_RULE,
    ("PATCH", "/webhooks/{application_id}/{token}/messages/{message_id}"): WEBHOOK_RULE,
    ("DELETE", "/webhooks/{application_id}/{token}/messages/{message_id}"): WEBHOOK_RULE,
}
# 30046 "Maximum number of edits to messages older than 1 hour reached. Try again later"
# (Topics > Opcodes and Status Codes, JSON error codes). The cap is undocumented; observed by
# bot authors: about 3 such edits per channel per 20 s. Clients report the answer as HTTP 429
# carrying code 30046 (e.g. discord.py's "429 Too Many Requests (error code: 30046)").
OLD_MESSAGE_AGE = 3600.0
OLD_EDIT_RULE = Rule(3, 20.0)
_MAJOR_KEYS = ("channel_id", "guild_id")
CALLBACK_ROUTE = "/interactions/{interaction_id}/{token}/callback"


@dataclass
class RateLimitHit:
    """One 429 the emulator answered."""

    method: str
    route: str
    path: str
    bucket: str
    scope: str
    retry_after: float
    is_global: bool
    at: float


@dataclass
class _Window:
    rule: Rule
    remaining: int
    resets_at: float


@dataclass
class Verdict:
    """What the limiter says about one request: its headers, and a 429 body if refused."""

    headers: dict[str, str]
    refusal: JSON | None = None


def major_parameter(route: str, params: dict[str, str]) -> str:
    """The top-level resource a bucket is kept per (webhook: id and token together)."""
    if route.startswith("/webhooks/"):
        return f"webhook:{params.get('application_id')}:{params.get('token')}"
    if route.startswith("/interactions/"):
        return f"interaction:{params.get('interaction_id')}"
    for key in _MAJOR_KEYS:
        if key in params:
            return f"{key}:{params[key]}"
    return ""


def _bucket_id(method: str, route: str) -> str:
    # Opaque, and "non-inclusive of top-level resources in the path", as Discord's.
    return hashlib.sha1(f"{method} {route}".encode()).hexdigest()[:32]


@dataclass
class RateLimiter:
    """Buckets and the global window, on the emulator's clock; every 429 is recorded."""

    clock: Clock
    enabled: bool = True
    global_limit: int = GLOBAL_LIMIT
    hits: list[RateLimitHit] = field(default_factory=list)
    _windows: dict[object, _Window] = field(default_factory=dict)
    _global: dict[object, _Window] = field(default_factory=dict)

    @staticmethod
    def _window(table: dict[object, _Window], key: object, rule: Rule, now: float) -> _Window:
        window = table.get(key)
        if window is None or now >= window.resets_at:
            window = _Window(rule, rule.limit, now + rule.window)
            table[key] = window
        return window

    def check(
        self, method: str, route: str, path: str, params: dict[str, str], token: str | None
    ) -> Verdict:
        """Count a request; headers for its answer, or the 429 to send instead."""
        now = self.clock.monotonic()
        wall = self.clock.time()
        rule = _RULES.get((method, route), DEFAULT_RULE)
        bucket = _bucket_id(method, route)
        window = self._window(self._windows, (bucket, major_parameter(route, params)), rule, now)
        headers = {"X-RateLimit-Bucket": bucket, "X-RateLimit-Limit": str(rule.limit)}
        if not self.enabled:
            window.remaining = rule.limit
        interaction = route == CALLBACK_ROUTE or route.startswith("/webhooks/")
        if self.enabled and token is not None and not interaction:
            glob = self._window(self._global, token, Rule(self.global_limit, GLOBAL_WINDOW), now)
            if glob.remaining <= 0:
                return self._refuse(method, route, path, bucket, glob, now, wall, "global", {})
            glob.remaining -= 1
        if window.remaining <= 0:
            return self._refuse(method, route, path, bucket, window, now, wall, "user", headers)
        window.remaining -= 1
        headers.update(self._timing(window, now, wall))
        return Verdict(headers)

    @staticmethod
    def _timing(window: _Window, now: float, wall: float) -> dict[str, str]:
        after = max(0.0, window.resets_at - now)
        return {
            "X-RateLimit-Remaining": str(window.remaining),
            "X-RateLimit-Reset": f"{wall + after:.3f}",
            "X-RateLimit-Reset-After": f"{after:.3f}",
        }

    def _refuse(
        self,
        method: str,
        route: str,
        path: str,
        bucket: str,
        window: _Window,
        now: float,
        wall: float,
        scope: str,
        headers: dict[str, str],
    ) -> Verdict:
        retry_after = round(max(0.001, window.resets_at - now), 3)
        is_global = scope == "global"
        out = dict(headers)
        if not is_global:
            out.update(self._timing(window, now, wall))
        else:
            out["X-RateLimit-Global"] = "true"
        out["X-RateLimit-Scope"] = scope
        out["Retry-After"] = str(math.ceil(retry_after))
        self.hits.append(
            RateLimitHit(method, route, path, bucket, scope, retry_after, is_global, wall)
        )
        body: JSON = {
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": is_global,
        }
        return Verdict(out, body)

    def old_message_edit(self, channel_id: int, path: str, route: str) -> None:
        """Count an edit of a message older than an hour; raises the 30046 answer past the cap."""
        if not self.enabled:
            return
        now = self.clock.monotonic()
        window = self._window(self._windows, ("old-edit", channel_id), OLD_EDIT_RULE, now)
        if window.remaining > 0:
            window.remaining -= 1
            return
        retry_after = round(max(0.001, window.resets_at - now), 3)
        bucket = _bucket_id("PATCH", "old-message-edits")
        self.hits.append(
            RateLimitHit(
                "PATCH", route, path, bucket, "user", retry_after, False, self.clock.time()
            )
        )
        headers = self._timing(window, now, self.clock.time())
        headers.update(
            {
                "X-RateLimit-Bucket": bucket,
                "X-RateLimit-Limit": str(OLD_EDIT_RULE.limit),
                "X-RateLimit-Scope": "user",
                "Retry-After": str(math.ceil(retry_after)),
            }
        )
        raise DiscordHTTPError(
            429,
            OLD_MESSAGE_EDITS,
            "Maximum number of edits to messages older than 1 hour reached. Try again later",
            extra={"retry_after": retry_after, "global": False},
            headers=headers,
        )
