"""What tests read off the emulator: channel state, waits, and counters of requests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .errors import JSON
from .events import EventHub, Subscription
from .ratelimits import RateLimiter, RateLimitHit
from .request_log import RequestLog, RequestRecord
from .service import DiscordService
from .state import Cast, World


class EmulatorReadings:
    """The read side of ``DiscordEmulator``: what happened, as a user or a client saw it."""

    world: World
    service: DiscordService
    events: EventHub
    request_log: RequestLog
    limiter: RateLimiter

    # who is who ----------------------------------------------------------------------------

    @property
    def bot_token(self) -> str:
        """The only token the emulator accepts."""
        return self.world.bot_token

    @property
    def cast(self) -> Cast:
        """Every starting id (users, roles, channels)."""
        return self.world.cast

    @property
    def application_id(self) -> int:
        """The bot's application id."""
        return self.world.cast.application_id

    @property
    def bot_user_id(self) -> int:
        """The bot user's id."""
        return self.world.cast.bot_user_id

    @property
    def guild_id(self) -> int:
        """The one guild."""
        return self.world.guild_id

    @property
    def channel_id(self) -> int:
        """The default text channel."""
        return self.world.cast.channel_id

    @property
    def other_channel_id(self) -> int:
        """The second text channel."""
        return self.world.cast.other_channel_id

    @property
    def requester_id(self) -> int:
        """The member who runs commands by default."""
        return self.world.cast.requester_id

    @property
    def member_id(self) -> int:
        """A second ordinary member (e.g. someone else pressing Cancel)."""
        return self.world.cast.member_id

    @property
    def moderator_id(self) -> int:
        """A member with the Moderator role (Manage Server)."""
        return self.world.cast.moderator_id

    @property
    def owner_id(self) -> int:
        """The guild owner."""
        return self.world.cast.owner_id

    @property
    def moderator_role_id(self) -> int:
        """The Moderator role (Manage Server)."""
        return self.world.cast.moderator_role_id

    @property
    def member_role_id(self) -> int:
        """The Member role."""
        return self.world.cast.member_role_id

    @property
    def rate_limited(self) -> list[RateLimitHit]:
        """Every 429 the emulator answered (route buckets, global, 30046), in order."""
        return list(self.limiter.hits)

    @property
    def rate_limit_count(self) -> int:
        """How many 429s the emulator answered."""
        return len(self.limiter.hits)

    # reading the channel -----------------------------------------------------------------

    def channel_messages(self, channel_id: int | None = None) -> list[JSON]:
        """A channel's messages in their current state, oldest first (no ephemeral ones)."""
        log_ = self.service.channel_log(channel_id or self.world.cast.channel_id)
        return [self.service.render(m) for m in log_]

    def ephemeral_messages(self, user_id: int | None = None) -> list[JSON]:
        """Ephemeral replies, oldest first, optionally only those one user sees."""
        return [self.service.render(m) for m in self.service.ephemeral_messages(user_id)]

    def message(self, message_id: int) -> JSON | None:
        """Any message (ephemeral too) by id, current state."""
        return self.service.render_id(int(message_id))

    def pinged_users(self, message_id: int) -> list[int]:
        """Who got a notification when the message was posted (allowed_mentions applied)."""
        message = self.service.messages.get(int(message_id))
        return [] if message is None else list(message.pinged_user_ids)

    def edit_count(self, message_id: int) -> int:
        """How many times a message was edited."""
        message = self.service.messages.get(int(message_id))
        return 0 if message is None else len(message.edit_times)

    def edit_times(self, message_id: int) -> list[float]:
        """When each edit happened (POSIX seconds)."""
        message = self.service.messages.get(int(message_id))
        return [] if message is None else [t.timestamp() for t in message.edit_times]

    async def wait_for_message(
        self,
        predicate: Callable[[JSON], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - a timeout like asyncio.wait_for
        *,
        channel_id: int | None = None,
    ) -> JSON:
        """The first message (existing or new, ephemeral included) for which ``predicate`` holds.

        Messages are re-checked on every create and update; ``TimeoutError`` otherwise.
        """
        with self.events.subscribe() as events:
            for message in self.service.messages.values():
                if channel_id is not None and message.channel_id != channel_id:
                    continue
                rendered = self.service.render(message)
                if predicate(rendered):
                    return rendered
            try:
                async with asyncio.timeout(timeout):
                    while True:
                        event = await events.get()
                        if event.type not in ("message_create", "message_update"):
                            continue
                        if channel_id is not None and event.channel_id != channel_id:
                            continue
                        rendered = event.data["message"]
                        if predicate(rendered):
                            return dict(rendered)
            except TimeoutError:
                raise TimeoutError(f"no matching message within {timeout} s") from None

    def subscribe(self) -> Subscription:
        """A stream of events (messages created/updated/deleted, interactions) from now on."""
        return self.events.subscribe()

    # counters ----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request answered, in order."""
        return list(self.request_log.records)

    @property
    def unknown_routes(self) -> list[RequestRecord]:
        """Requests to routes the emulator does not implement (answered 404)."""
        return list(self.request_log.unknown)

    @property
    def crashes(self) -> list[str]:
        """Requests the emulator itself failed on (answered 500); empty unless it has a bug."""
        return list(self.request_log.crashes)

    def request_count(self, method: str | None = None, route: str | None = None) -> int:
        """How many requests hit a method and/or route template.

        E.g. ``request_count("PATCH", "/channels/{channel_id}/messages/{message_id}")``.
        """
        return self.request_log.count(method, route)
