"""``DiscordEmulator``: a local Discord (REST, gateway, CDN, sandbox page) on loopback."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

from aiohttp import web

from .cdn import AttachmentStore, serve_attachment
from .clock import Clock
from .commands import CommandRegistry
from .driver import Driver
from .errors import JSON, InvocationError
from .events import EmulatorEvent, EventHub
from .gateway import Gateway, Session
from .gateway_payloads import guild_create_payload, ready_payload
from .interactions import (
    InteractionHandle,
    InteractionRecord,
)
from .page import SandboxPage
from .permissions import Permission, combine
from .ratelimits import RateLimiter
from .readings import EmulatorReadings
from .relay import Relay
from .request_log import RequestLog
from .rest import RestApi
from .service import DiscordService, Limits
from .snowflake import SnowflakeGenerator
from .state import World

log = logging.getLogger(__name__)

_CDN_PATH = "/attachments/{channel_id:\\d+}/{attachment_id:\\d+}/{filename}"


class DiscordEmulator(EmulatorReadings):
    """A local Discord for the real discord.py client, plus a page to use it by hand.

    Use ``async with DiscordEmulator() as emu:`` (or ``await emu.start()`` /
    ``await emu.close()``), point discord.py at ``emu.api_base`` and ``emu.gateway_url``
    with :func:`bot.endpoints.configure_discord_endpoints`, and start the bot with
    ``emu.bot_token``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_token: str | None = None,
        interaction_token_lifetime: float = 900.0,
        ack_deadline: float = 3.0,
        upload_limit: int = 10 * 1024 * 1024,
        heartbeat_interval: float = 41.25,
        guild_name: str = "Seedance Sandbox",
        bot_name: str = "Seedance",
        serve_page: bool = True,
        rate_limits: bool = True,
    ) -> None:
        self._host = host
        self._port = port
        self.clock = Clock()
        self._ids = SnowflakeGenerator(clock=self.clock.time)
        self.limiter = RateLimiter(self.clock, enabled=rate_limits)
        self.lost_answers: Counter[tuple[str, str]] = Counter()
        self.failing: dict[tuple[str, str], list[int]] = {}
        self.world = World(self._ids, guild_name=guild_name, bot_name=bot_name)
        if bot_token is not None:
            self.world.bot_token = bot_token
        self.store = AttachmentStore(self._ids, self.clock)
        self.commands = CommandRegistry(self.world.cast.application_id, self._ids)
        self.limits = Limits(
            upload_limit=upload_limit,
            ack_deadline=ack_deadline,
            token_lifetime=interaction_token_lifetime,
        )
        self.events = EventHub()
        self.request_log = RequestLog()
        self.gateway = Gateway(
            token=lambda: self.world.bot_token,
            ready_payload=self._ready_payload,
            guild_payload=self._guild_create_payload,
            members_payload=lambda: [m.to_dict() for m in self.world.members.values()],
            heartbeat_interval=heartbeat_interval,
            on_status=lambda online: self.events.publish(
                EmulatorEvent("bot_status", {"connected": online})
            ),
        )
        self.service = DiscordService(
            world=self.world,
            store=self.store,
            commands=self.commands,
            ids=self._ids,
            limits=self.limits,
            clock=self.clock,
            limiter=self.limiter,
            listener=Relay(
                gateway=self.gateway,
                events=self.events,
                render=lambda message, gateway: self.service.render(message, gateway=gateway),
                bot_user_id=self.world.cast.bot_user_id,
                guild_id=self.world.guild_id,
                guild=self.world.guild_dict,
            ),
        )
        self.driver = Driver(
            world=self.world,
            service=self.service,
            commands=self.commands,
            store=self.store,
            gateway=self.gateway,
        )
        self.page = SandboxPage(self) if serve_page else None
        self._runner: web.AppRunner | None = None
        self._base_url = ""

    # lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start serving on the configured host and port."""
        if self._runner is not None:
            return
        # Bodies are limited by the emulator's own upload rule (413 / 40005), not by aiohttp.
        app = web.Application(client_max_size=1024**3)
        rest = RestApi(
            service=self.service,
            commands=self.commands,
            log_=self.request_log,
            gateway_url=lambda: self.gateway_url,
            on_commands_synced=self._commands_synced,
            limiter=self.limiter,
            lost_answers=self.lost_answers,
            failing=self.failing,
        )
        rest.add_routes(app)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/gateway/", self.gateway.handle)
        serve = functools.partial(serve_attachment, self.store, self.request_log)
        app.router.add_get(_CDN_PATH, serve)
        app.router.add_get("/media" + _CDN_PATH, serve)
        if self.page is not None:
            self.page.add_routes(app)
        rest.add_catch_all(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        await site.start()
        self._runner = runner
        port = self._bound_port(runner)
        self._base_url = f"http://{self._host}:{port}"
        self.store.base_url = self._base_url
        log.info("discord emulator listening on %s", self._base_url)

    @staticmethod
    def _bound_port(runner: web.AppRunner) -> int:
        for address in runner.addresses:
            if isinstance(address, tuple):
                return int(address[1])
        raise RuntimeError("the emulator is not bound to a TCP port")

    async def close(self) -> None:
        """Stop serving; live gateway connections are closed (1001 going away)."""
        self.service.cancel_timers()
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordEmulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # addresses and ids -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (the sandbox page is served here)."""
        if not self._base_url:
            raise RuntimeError("the emulator has not been started")
        return self._base_url

    @property
    def page_url(self) -> str:
        """The sandbox page's address, with this run's key (the page refuses any other)."""
        if self.page is None:
            raise RuntimeError("this emulator serves no page")
        return self.page.url

    @property
    def api_base(self) -> str:
        """The REST base URL, for ``discord.http.Route.BASE``."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """The gateway websocket URL (READY's resume_gateway_url and /gateway/bot say the same)."""
        return f"ws://{self.base_url.removeprefix('http://')}/gateway"

    @property
    def rate_limits(self) -> bool:
        """Whether rate limits (route buckets, the global limit, 30046) are enforced."""
        return self.limiter.enabled

    @rate_limits.setter
    def rate_limits(self, value: bool) -> None:
        self.limiter.enabled = value

    def advance_clock(self, seconds: float) -> None:
        """Let time pass on the emulated Discord: messages age, URLs and tokens expire."""
        self.clock.advance(seconds)

    @property
    def upload_limit(self) -> int:
        """Per-file upload limit in bytes (sent as ``attachment_size_limit``)."""
        return self.limits.upload_limit

    @upload_limit.setter
    def upload_limit(self, value: int) -> None:
        self.limits.upload_limit = value

    # gateway -----------------------------------------------------------------------------

    def _ready_payload(self, session: Session) -> JSON:
        return ready_payload(self.world, session, self.gateway_url)

    def _guild_create_payload(self, session: Session) -> JSON:
        return guild_create_payload(self.world, session)

    @property
    def bot_connected(self) -> bool:
        """Whether the bot has a live gateway connection."""
        return self.gateway.has_connected_session

    async def wait_for_bot(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until the bot has identified (or resumed) on the gateway."""
        await asyncio.wait_for(self.gateway.connected.wait(), timeout)

    def request_reconnect(self) -> None:
        """Ask the bot to reconnect (op 7); it should RESUME."""
        self.gateway.request_reconnect()

    def lose_answers(self, method: str, route: str, times: int = 1) -> None:
        """Handle the next ``times`` successful ``method route`` requests (``route`` as the
        docs spell it, e.g. ``/channels/{channel_id}/messages``), then drop the connection
        before the answer: the work is done but the bot never hears of it."""
        self.lost_answers[method.upper(), route] += times

    def fail_requests(self, method: str, route: str, *, status: int = 503, times: int = 1) -> None:
        """Answer the next ``times`` ``method route`` requests with ``status`` (a 5xx, as in an
        outage) without handling them; ``times=0`` ends it."""
        self.failing[method.upper(), route] = [status, times]

    def drop_gateway(self, code: int = 4000) -> None:
        """Close the bot's websocket with ``code``; 4000 lets it resume."""
        self.gateway.drop_connections(code)

    # commands ----------------------------------------------------------------------------

    def _commands_synced(self, guild_id: int | None) -> None:
        names = [c["name"] for c in self.commands.registered(guild_id)]
        self.events.publish(
            EmulatorEvent(
                "commands_synced",
                {"guild_id": None if guild_id is None else str(guild_id), "names": names},
            )
        )

    @property
    def command_sync_count(self) -> int:
        """How many bulk command overwrites (PUT) the bot made."""
        return self.commands.sync_count

    def registered_commands(self, guild_id: int | None = None) -> list[JSON]:
        """Commands registered globally (``None``) or to a guild."""
        return self.commands.registered(guild_id)

    def available_commands(
        self, channel_id: int | None = None, user_id: int | None = None
    ) -> list[JSON]:
        """Commands shown in a channel's picker (guild ones, then global ones).

        With ``user_id``, only those that member's client would offer (permissions, place).
        """
        channel = self.world.channel(channel_id or self.channel_id)
        found = self.commands.available(channel.guild_id)
        if user_id is None:
            return found
        offered = []
        for command in found:
            try:
                self.driver.check_command_allowed(command, user_id, channel)
            except InvocationError:
                continue
            offered.append(command)
        return offered

    # the driver API: what people do -----------------------------------------------------

    async def upload_attachment(
        self,
        filename: str,
        data: bytes,
        content_type: str | None = None,
        *,
        channel_id: int | None = None,
    ) -> JSON:
        """Upload a file as a user's client does before running a command; the attachment object."""
        stored = self.store.add(channel_id or self.channel_id, filename, data, content_type)
        return self.store.to_dict(stored)

    def attachment_bytes(self, attachment_id: int) -> bytes | None:
        """The bytes of any stored attachment (uploaded or posted by the bot)."""
        stored = self.store.get(int(attachment_id))
        return None if stored is None else stored.data

    async def invoke_command(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user_id: int | None = None,
        channel_id: int | None = None,
        attachments: dict[str, JSON] | None = None,
    ) -> InteractionHandle:
        """Run a slash command as a member; ``name`` may hold subcommands (``"admin budget set"``).

        Attachment options take an attachment object from :meth:`upload_attachment` (in
        ``options`` or ``attachments``). Raises :class:`InvocationError` for anything the
        Discord client would not let the member send.
        """
        values = dict(options or {})
        values.update(attachments or {})
        return self._handle(
            self.driver.invoke_command(name, values, user_id=user_id, channel_id=channel_id)
        )

    async def click_button(
        self, message_id: int, custom_id: str, *, user_id: int | None = None
    ) -> InteractionHandle:
        """Press a button on a message as a member."""
        return self._handle(self.driver.click_button(message_id, custom_id, user_id=user_id))

    async def invoke_message_command(
        self, name: str, message_id: int, *, user_id: int | None = None
    ) -> InteractionHandle:
        """Run a message context-menu command (Apps > ``name``) on a message, as a member.

        The bot receives an APPLICATION_COMMAND interaction of command type 3 with
        ``target_id`` and the message in ``resolved.messages``.
        """
        return self._handle(self.driver.invoke_message_command(name, message_id, user_id=user_id))

    async def submit_modal(
        self,
        opened_by: InteractionHandle | int,
        values: dict[str, Any] | None = None,
        *,
        user_id: int | None = None,
    ) -> InteractionHandle:
        """Fill in and submit the modal the bot opened on an interaction (MODAL_SUBMIT).

        ``values`` maps each input's custom id to its text (text inputs) or list of picked
        option values (string selects). Raises :class:`InvocationError` when no modal is open
        there or the input breaks the modal's own limits (required, lengths, options).
        """
        interaction_id = opened_by.id if isinstance(opened_by, InteractionHandle) else opened_by
        record = self.driver.submit_modal(int(interaction_id), values or {}, user_id=user_id)
        return self._handle(record)

    async def send_user_message(
        self,
        content: str,
        *,
        user_id: int | None = None,
        channel_id: int | None = None,
        files: Sequence[tuple[str, bytes, str | None]] = (),
    ) -> JSON:
        """Post an ordinary message as a member (the bot gets MESSAGE_CREATE).

        ``files`` are ``(filename, bytes, content type)`` uploads, attached as a member's
        client attaches them (Attach Files is needed, as on Discord).
        """
        message = self.driver.post_message(
            content, user_id=user_id, channel_id=channel_id, files=files
        )
        return self.service.render(message)

    def start_thread(
        self, name: str, *, channel_id: int | None = None, user_id: int | None = None
    ) -> int:
        """A member starts a public thread in a channel; its id."""
        return self.driver.start_thread(name, channel_id=channel_id, user_id=user_id).id

    def dm_channel_id(self, user_id: int | None = None) -> int:
        """The DM channel between the bot and a member (for commands run in DMs)."""
        return self.world.dm_channel_for(user_id or self.requester_id).id

    def _handle(self, record: InteractionRecord) -> InteractionHandle:
        return InteractionHandle(record, self.service.render_id)

    def interaction(self, interaction_id: int) -> InteractionHandle:
        """A handle on any interaction by id."""
        return self._handle(self.service.interactions[int(interaction_id)])

    # the server's setup, changed by tests ------------------------------------------------

    def set_channel_permissions(
        self,
        channel_id: int,
        target_id: int,
        *,
        allow: Iterable[str | Permission] = (),
        deny: Iterable[str | Permission] = (),
    ) -> None:
        """Set a channel overwrite for a role or member (both empty = remove it)."""
        self.service.set_overwrite(channel_id, target_id, allow=combine(allow), deny=combine(deny))

    def delete_channel(self, channel_id: int) -> None:
        """A moderator deletes a channel, with its messages and threads."""
        self.service.delete_channel(channel_id)

    def deny_bot_permissions(self, channel_id: int, *permissions: str | Permission) -> None:
        """Deny the bot permissions (``"send_messages"``, ``"attach_files"``...) in a channel."""
        self.set_channel_permissions(channel_id, self.bot_user_id, deny=permissions)

    def set_member_roles(self, user_id: int, role_ids: list[int]) -> None:
        """Give a member exactly these roles."""
        self.service.set_member_roles(user_id, role_ids)

    def set_locale(self, user_id: int, locale: str) -> None:
        """Set a member's Discord client language (``"it"``, ``"en-US"`` ...): their
        interactions carry it as ``locale``."""
        self.service.set_user_locale(user_id, locale)

    def set_guild_locale(self, locale: str) -> None:
        """Set the server's preferred language: interactions carry it as ``guild_locale``, and
        the bot hears it in a GUILD_UPDATE."""
        self.service.set_guild_locale(locale)

    def set_dms_open(self, user_id: int, is_open: bool) -> None:
        """Whether the bot may DM this member (closed: 50007 Cannot send messages to this user)."""
        self.world.member(user_id).dms_open = is_open

    def display_name(self, user_id: int) -> str:
        """How the channel shows a user."""
        member = self.world.members.get(user_id)
        if member is not None:
            return member.display_name
        return self.world.user(user_id).display_name
