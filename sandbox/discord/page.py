"""The sandbox page: a one-channel Discord view in the browser, and its JSON API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web
from aiohttp.web_request import FileField

from .command_rules import LOCALES, MESSAGE
from .commands import command_summary
from .errors import JSON, DiscordHTTPError, InvocationError
from .page_access import PageAccess
from .wire import json_response

if TYPE_CHECKING:
    from .server import DiscordEmulator

log = logging.getLogger(__name__)

_STATIC_NAME = re.compile(r"^[a-z0-9_-]+\.(html|js|css|svg)$")
_CONTENT_TYPES = {
    "html": "text/html",
    "js": "text/javascript",
    "css": "text/css",
    "svg": "image/svg+xml",
}


def _static_bytes(name: str) -> bytes | None:
    if not _STATIC_NAME.match(name):
        return None
    resource = resources.files("sandbox").joinpath("static").joinpath(name)
    if not resource.is_file():
        return None
    return resource.read_bytes()


def _bad_request(message: str) -> web.Response:
    return json_response({"error": message}, status=400)


class SandboxPage:
    """Serves the page and the ``/sandbox/...`` API it uses, to the holder of the run's key."""

    def __init__(self, emulator: DiscordEmulator) -> None:
        self._emu = emulator
        self._sockets: set[web.WebSocketResponse] = set()
        self.access = PageAccess(lambda: emulator.base_url)

    @property
    def url(self) -> str:
        """The address to open: the page with the run's key."""
        return self.access.url

    def add_routes(self, app: web.Application) -> None:
        """Register the page, its assets and its API, each behind the key and origin checks."""
        guard = self.access.guard
        app.router.add_get("/", guard(self.index))
        app.router.add_get("/static/{name}", guard(self.static))
        app.router.add_get("/sandbox/info", guard(self.info))
        app.router.add_get("/sandbox/commands", guard(self.commands))
        app.router.add_get("/sandbox/messages", guard(self.messages))
        app.router.add_post("/sandbox/invoke", guard(self.invoke))
        app.router.add_post("/sandbox/click", guard(self.click))
        app.router.add_post("/sandbox/post", guard(self.post))
        app.router.add_post("/sandbox/message-command", guard(self.message_command))
        app.router.add_post("/sandbox/modal", guard(self.modal))
        app.router.add_post("/sandbox/locale", guard(self.locale))
        app.router.add_get("/sandbox/events", guard(self.events))
        app.on_shutdown.append(self._close_sockets)

    async def _close_sockets(self, app: web.Application) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"emulator shutting down")

    # the page ----------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.StreamResponse:
        """The page itself; opened with the key, it trades the key for a cookie first."""
        if "key" in request.query:
            # Out of the address bar, history and screen shares from here on.
            response = web.Response(status=303, headers={"Location": "/"})
            self.access.remember(response)
            return response
        return await self._file("index.html")

    async def static(self, request: web.Request) -> web.StreamResponse:
        """The page's script and stylesheet."""
        return await self._file(request.match_info["name"])

    async def _file(self, name: str) -> web.StreamResponse:
        data = await asyncio.to_thread(_static_bytes, name)
        if data is None:
            raise web.HTTPNotFound()
        kind = _CONTENT_TYPES[name.rsplit(".", 1)[1]]
        return web.Response(
            body=data,
            headers={"Content-Type": f"{kind}; charset=utf-8", "Cache-Control": "no-cache"},
        )

    # the API -----------------------------------------------------------------------------

    async def info(self, request: web.Request) -> web.StreamResponse:
        """Who and where: guild, channels, people to act as, names for mentions."""
        emu = self._emu
        world = emu.world
        cast = world.cast
        labels = {
            cast.requester_id: "requester",
            cast.member_id: "member",
            cast.moderator_id: "moderator",
            cast.owner_id: "owner",
        }
        people = [
            {
                "id": str(uid),
                "name": emu.display_name(uid),
                "username": world.users[uid].username,
                "label": label,
                "roles": [world.roles[r].name for r in world.members[uid].roles],
                "locale": world.users[uid].locale,
            }
            for uid, label in labels.items()
        ]
        return json_response(
            {
                "guild": {"id": str(world.guild_id), "name": world.guild_name},
                "bot": {"id": str(emu.bot_user_id), "name": emu.display_name(emu.bot_user_id)},
                "channels": [
                    {"id": str(c.id), "name": c.name, "topic": c.topic}
                    for c in world.text_channels()
                ],
                "default_channel_id": str(emu.channel_id),
                "people": people,
                "users": {
                    str(uid): {"name": emu.display_name(uid), "bot": user.bot}
                    for uid, user in world.users.items()
                },
                "roles": {
                    str(rid): {"name": role.name, "color": role.color}
                    for rid, role in world.roles.items()
                },
                "upload_limit": emu.upload_limit,
                "ack_deadline": emu.limits.ack_deadline,
                "bot_connected": emu.bot_connected,
                "guild_locale": world.preferred_locale,
                "locales": sorted(LOCALES),
            }
        )

    async def commands(self, request: web.Request) -> web.StreamResponse:
        """The commands the bot registered that the user may run, flattened with their options."""
        channel_id = _int_or_none(request.query.get("channel_id"))
        user_id = _int_or_none(request.query.get("user_id"))
        try:
            available = self._emu.available_commands(channel_id, user_id)
        except DiscordHTTPError as exc:
            return _bad_request(exc.message)
        user = self._emu.world.users.get(user_id or self._emu.requester_id)
        locale = user.locale if user is not None else None
        runnable: list[JSON] = []
        for command in available:
            if command.get("type", 1) != 1:
                continue
            runnable.extend(command_summary(command, locale))
        # Message commands are offered on a message's right-click menu (Apps).
        on_messages = [c for c in available if c.get("type") == MESSAGE]
        labels = {
            c["name"]: (c.get("name_localizations") or {}).get(locale, c["name"])
            for c in on_messages
        }
        return json_response(
            {
                "commands": runnable,
                "message_commands": [c["name"] for c in on_messages],
                "message_command_labels": labels,
            }
        )

    async def messages(self, request: web.Request) -> web.StreamResponse:
        """A channel's messages plus the ephemeral ones the given user sees there."""
        emu = self._emu
        channel_id = _int_or_none(request.query.get("channel_id")) or emu.channel_id
        user_id = _int_or_none(request.query.get("user_id"))
        items: list[JSON] = [
            {"message": m, "visible_to": None} for m in emu.channel_messages(channel_id)
        ]
        if user_id is not None:
            items.extend(
                {"message": m, "visible_to": str(user_id)}
                for m in emu.ephemeral_messages(user_id)
                if int(m["channel_id"]) == channel_id
            )
        items.sort(key=lambda item: int(item["message"]["id"]))
        return json_response({"channel_id": str(channel_id), "items": items})

    async def invoke(self, request: web.Request) -> web.StreamResponse:
        """Upload the form's files and run a command as the chosen user."""
        emu = self._emu
        fields: dict[str, str] = {}
        files: dict[str, tuple[str, bytes, str | None]] = {}
        # Browsers send multipart/form-data; plain url-encoded forms work too.
        form = await request.post()
        for name, value in form.items():
            if isinstance(value, FileField):
                data = await asyncio.to_thread(value.file.read)
                if name.startswith("file:") and value.filename and data:
                    files[name.removeprefix("file:")] = (value.filename, data, value.content_type)
            elif isinstance(value, str):
                fields[name] = value
        try:
            options: dict[str, Any] = json.loads(fields.get("options") or "{}")
        except ValueError:
            return _bad_request("options must be JSON")
        if not isinstance(options, dict):
            return _bad_request("options must be a JSON object")
        channel_id = _int_or_none(fields.get("channel_id")) or emu.channel_id
        user_id = _int_or_none(fields.get("user_id")) or emu.requester_id
        try:
            for option, (filename, data, content_type) in files.items():
                options[option] = await emu.upload_attachment(
                    filename, data, content_type, channel_id=channel_id
                )
            handle = await emu.invoke_command(
                fields.get("command", ""), options, user_id=user_id, channel_id=channel_id
            )
        except InvocationError as exc:
            return _bad_request(str(exc))
        return json_response({"interaction_id": str(handle.id)})

    async def click(self, request: web.Request) -> web.StreamResponse:
        """Press a button as the chosen user."""
        try:
            body = await request.json()
            message_id = int(body["message_id"])
            custom_id = str(body["custom_id"])
            user_id = _int_or_none(body.get("user_id"))
        except (ValueError, KeyError, TypeError):
            return _bad_request("send message_id, custom_id and user_id as JSON")
        try:
            handle = await self._emu.click_button(message_id, custom_id, user_id=user_id)
        except InvocationError as exc:
            return _bad_request(str(exc))
        return json_response({"interaction_id": str(handle.id)})

    async def post(self, request: web.Request) -> web.StreamResponse:
        """Post an ordinary message (text, and a file if one is picked) as the chosen user."""
        form = await request.post()
        files: list[tuple[str, bytes, str | None]] = []
        upload = form.get("file")
        if isinstance(upload, FileField) and upload.filename:
            data = await asyncio.to_thread(upload.file.read)
            if data:
                files.append((upload.filename, data, upload.content_type))
        content = form.get("content")
        text = content if isinstance(content, str) else ""
        if not text.strip() and not files:
            return _bad_request("write something or pick a file")
        try:
            message = await self._emu.send_user_message(
                text,
                user_id=_int_or_none(form.get("user_id")),
                channel_id=_int_or_none(form.get("channel_id")),
                files=files,
            )
        except InvocationError as exc:
            return _bad_request(str(exc))
        return json_response({"message_id": message["id"]})

    async def message_command(self, request: web.Request) -> web.StreamResponse:
        """Run a message command (right-click > Apps) on a message as the chosen user."""
        try:
            body = await request.json()
            message_id = int(body["message_id"])
            name = str(body["name"])
            user_id = _int_or_none(body.get("user_id"))
        except (ValueError, KeyError, TypeError):
            return _bad_request("send message_id, name and user_id as JSON")
        try:
            handle = await self._emu.invoke_message_command(name, message_id, user_id=user_id)
        except InvocationError as exc:
            return _bad_request(str(exc))
        return json_response({"interaction_id": str(handle.id)})

    async def modal(self, request: web.Request) -> web.StreamResponse:
        """Submit the form the bot opened, with what the user typed and picked."""
        try:
            body = await request.json()
            interaction_id = int(body["interaction_id"])
            values = body.get("values") or {}
            user_id = _int_or_none(body.get("user_id"))
            if not isinstance(values, dict):
                raise TypeError("values")
        except (ValueError, KeyError, TypeError):
            return _bad_request("send interaction_id, values and user_id as JSON")
        try:
            handle = await self._emu.submit_modal(interaction_id, values, user_id=user_id)
        except InvocationError as exc:
            return _bad_request(str(exc))
        return json_response({"interaction_id": str(handle.id)})

    async def locale(self, request: web.Request) -> web.StreamResponse:
        """Switch a person's Discord language (``user_id`` and ``locale``) or the server's
        (``guild_locale``), as the client's and the server's settings would."""
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise TypeError("body")
            user_id = _int_or_none(body.get("user_id"))
            locale = body.get("locale")
            guild_locale = body.get("guild_locale")
        except (ValueError, TypeError):
            return _bad_request("send user_id and locale, or guild_locale, as JSON")
        try:
            if locale is not None:
                if user_id is None or user_id not in self._emu.world.users:
                    return _bad_request("no such user")
                self._emu.set_locale(user_id, str(locale))
            if guild_locale is not None:
                self._emu.set_guild_locale(str(guild_locale))
        except ValueError as exc:
            return _bad_request(str(exc))
        return json_response({"ok": True})

    async def events(self, request: web.Request) -> web.StreamResponse:
        """A websocket streaming every event as JSON (the page filters ephemeral ones)."""
        ws = web.WebSocketResponse(heartbeat=30.0)
        await ws.prepare(request)
        self._sockets.add(ws)
        subscription = self._emu.subscribe()

        async def pump() -> None:
            async for event in subscription:
                await ws.send_json(event.to_json())

        sender = asyncio.create_task(pump())
        try:
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
                await sender
            subscription.close()
            self._sockets.discard(ws)
        return ws


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
