"""The emulated gateway: HELLO, IDENTIFY/READY, heartbeats, RESUME, and event dispatch."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from .errors import JSON

log = logging.getLogger(__name__)

# Opcodes.
DISPATCH = 0
HEARTBEAT = 1
IDENTIFY = 2
PRESENCE_UPDATE = 3
VOICE_STATE_UPDATE = 4
RESUME = 6
RECONNECT = 7
REQUEST_GUILD_MEMBERS = 8
INVALID_SESSION = 9
HELLO = 10
HEARTBEAT_ACK = 11

# Intents.
GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_MESSAGES = 1 << 9
DIRECT_MESSAGES = 1 << 12
MESSAGE_CONTENT = 1 << 15

# Close codes.
UNKNOWN_OPCODE = 4001
DECODE_ERROR = 4002
NOT_AUTHENTICATED = 4003
AUTHENTICATION_FAILED = 4004
ALREADY_AUTHENTICATED = 4005

_BUFFERED_EVENTS = 2000
_RESUMABLE_FOR_S = 60.0
_ZLIB_SUFFIX = b"\x00\x00\xff\xff"
# Events > Gateway, "Sending Events": payloads "Must not exceed 4096 bytes. If an event payload
# does exceed 4096 bytes, the connection will be closed with a 4002 close event code."
MAX_PAYLOAD_BYTES = 4096

try:
    import zstandard
except ImportError:  # pragma: no cover - zstandard is a dev dependency
    zstandard = None  # type: ignore[assignment]


class _Compressor(Protocol):
    def frame(self, data: bytes) -> bytes: ...


class _ZlibStream:
    """One zlib context per connection, each message ending in Z_SYNC_FLUSH."""

    def __init__(self) -> None:
        self._context = zlib.compressobj()

    def frame(self, data: bytes) -> bytes:
        return self._context.compress(data) + self._context.flush(zlib.Z_SYNC_FLUSH)


class _ZstdStream:
    """Events > Gateway, "zstd-stream": one context for the connection's lifetime; "each
    websocket message corresponds to a single gateway message, but does not end a zstd frame"."""

    def __init__(self) -> None:
        assert zstandard is not None
        self._context = zstandard.ZstdCompressor().compressobj()

    def frame(self, data: bytes) -> bytes:
        assert zstandard is not None
        return self._context.compress(data) + self._context.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)


def compressor_for(compress: str | None) -> _Compressor | None:
    """The transport compression a connection asked for (``compress=`` query parameter).

    Discord offers ``zlib-stream`` and ``zstd-stream``. zstd needs the ``zstandard`` package
    here; without it the emulator sends uncompressed text frames, which every client reads.
    """
    if compress == "zlib-stream":
        return _ZlibStream()
    if compress == "zstd-stream" and zstandard is not None:
        return _ZstdStream()
    return None


@dataclass
class _Close:
    code: int
    reason: str


class Connection:
    """One websocket: its writer task, compression context and outgoing queue."""

    def __init__(self, ws: web.WebSocketResponse, *, compressor: _Compressor | None) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[JSON | _Close] = asyncio.Queue()
        self._compressor = compressor
        self.writer: asyncio.Task[None] | None = None

    def send(self, payload: JSON) -> None:
        """Queue a payload; frames leave in order."""
        self.queue.put_nowait(payload)

    def close(self, code: int, reason: str = "") -> None:
        """Queue a close after everything already queued."""
        self.queue.put_nowait(_Close(code, reason))

    async def run_writer(self) -> None:
        """Send queued payloads until a close is queued or the socket dies."""
        while True:
            item = await self.queue.get()
            if isinstance(item, _Close):
                await self.ws.close(code=item.code, message=item.reason.encode())
                return
            text = json.dumps(item, separators=(",", ":"))
            try:
                if self._compressor is not None:
                    await self.ws.send_bytes(self._compressor.frame(text.encode()))
                else:
                    await self.ws.send_str(text)
            except (ConnectionResetError, RuntimeError):
                return


@dataclass
class Session:
    """A gateway session: survives disconnects and can be resumed."""

    id: str
    intents: int
    shard: list[int] | None
    seq: int = 0
    buffer: deque[JSON] = field(default_factory=lambda: deque(maxlen=_BUFFERED_EVENTS))
    connection: Connection | None = None
    disconnected_at: float | None = None

    def dispatch(self, event: str, data: JSON) -> None:
        self.seq += 1
        payload = {"op": DISPATCH, "t": event, "s": self.seq, "d": data}
        self.buffer.append(payload)
        if self.connection is not None:
            self.connection.send(payload)


class Gateway:
    """Speaks the gateway protocol to the bot and dispatches events to its sessions."""

    def __init__(
        self,
        *,
        token: Callable[[], str],
        ready_payload: Callable[[Session], JSON],
        guild_payload: Callable[[Session], JSON],
        members_payload: Callable[[], list[JSON]],
        heartbeat_interval: float,
        on_status: Callable[[bool], None] | None = None,
    ) -> None:
        self._token = token
        self._on_status = on_status
        self._ready_payload = ready_payload
        self._guild_payload = guild_payload
        self._members_payload = members_payload
        self.heartbeat_interval = heartbeat_interval
        self.sessions: dict[str, Session] = {}
        self._connections: set[Connection] = set()
        self.identify_count = 0
        self.resume_count = 0
        self.heartbeats = 0
        self.connected = asyncio.Event()

    @property
    def has_connected_session(self) -> bool:
        """Whether a bot session currently has a live websocket."""
        return any(s.connection is not None for s in self.sessions.values())

    def _forget_stale_sessions(self) -> None:
        # A bot that restarted identifies anew; its old sessions would buffer events forever.
        now = time.monotonic()
        for key, old in list(self.sessions.items()):
            if old.disconnected_at is not None and now - old.disconnected_at > _RESUMABLE_FOR_S:
                del self.sessions[key]

    def _status_changed(self) -> None:
        if self._on_status is not None:
            self._on_status(self.has_connected_session)

    # dispatch ----------------------------------------------------------------------------

    def dispatch(
        self,
        event: str,
        data: JSON | Callable[[Session], JSON | None],
        *,
        intent: int | None = None,
    ) -> int:
        """Dispatch an event to every session whose intents include ``intent``.

        ``data`` may be a function of the session (for per-intent payloads); returning
        ``None`` skips that session. Returns how many sessions received it.
        """
        sent = 0
        for session in self.sessions.values():
            if intent is not None and not session.intents & intent:
                continue
            body = data(session) if callable(data) else data
            if body is None:
                continue
            session.dispatch(event, body)
            sent += 1
        return sent

    def request_reconnect(self) -> None:
        """Send op 7 RECONNECT to every live connection (the bot should resume)."""
        for connection in list(self._connections):
            connection.send({"op": RECONNECT, "d": None})

    def drop_connections(self, code: int = 4000) -> None:
        """Close every live websocket with ``code`` (4000 = resumable)."""
        for connection in list(self._connections):
            connection.close(code, "emulator dropped the connection")

    def invalidate_sessions(self) -> None:
        """Forget every session and tell live connections (op 9, not resumable)."""
        for connection in list(self._connections):
            connection.send({"op": INVALID_SESSION, "d": False})
        self.sessions.clear()

    async def close(self) -> None:
        """Close every websocket (going away)."""
        for connection in list(self._connections):
            connection.close(1001, "emulator shutting down")
        writers = [c.writer for c in self._connections if c.writer is not None]
        if writers:
            _, pending = await asyncio.wait(writers, timeout=2.0)
            for writer in pending:
                writer.cancel()

    # the websocket -----------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The gateway websocket endpoint."""
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        encoding = request.query.get("encoding", "json")
        compress = request.query.get("compress")
        connection = Connection(ws, compressor=compressor_for(compress))
        connection.writer = asyncio.create_task(connection.run_writer())
        self._connections.add(connection)
        session: Session | None = None
        try:
            if encoding != "json":
                connection.close(DECODE_ERROR, "only encoding=json is supported")
                return ws
            connection.send(
                {"op": HELLO, "d": {"heartbeat_interval": int(self.heartbeat_interval * 1000)}}
            )
            async for msg in ws:
                # JSON arrives in text or binary frames alike (hikari sends binary ones).
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                raw = msg.data.encode() if isinstance(msg.data, str) else bytes(msg.data)
                if len(raw) > MAX_PAYLOAD_BYTES:
                    connection.close(DECODE_ERROR, "Error while decoding payload.")
                    break
                try:
                    packet = json.loads(raw)
                    op = packet["op"]
                except (ValueError, KeyError, TypeError):
                    connection.close(DECODE_ERROR, "Error while decoding payload.")
                    break
                session, stop = self._handle_packet(connection, session, op, packet.get("d"))
                if stop:
                    break
        finally:
            self._connections.discard(connection)
            if session is not None and session.connection is connection:
                session.connection = None
                session.disconnected_at = time.monotonic()
                self._status_changed()
            await self._finish(connection)
        return ws

    async def _finish(self, connection: Connection) -> None:
        writer = connection.writer
        if writer is None:
            return
        if connection.ws.closed:
            writer.cancel()
        else:
            connection.close(1000, "")
        _, pending = await asyncio.wait({writer}, timeout=2.0)
        for task in pending:
            task.cancel()

    def _handle_packet(
        self, connection: Connection, session: Session | None, op: Any, data: Any
    ) -> tuple[Session | None, bool]:
        if op == HEARTBEAT:
            self.heartbeats += 1
            connection.send({"op": HEARTBEAT_ACK})
            return session, False
        if op == IDENTIFY:
            if session is not None:
                connection.close(ALREADY_AUTHENTICATED, "You sent more than one identify payload.")
                return session, True
            if not isinstance(data, dict) or data.get("token") != self._token():
                connection.close(AUTHENTICATION_FAILED, "Authentication failed.")
                return None, True
            session = Session(
                id=secrets.token_hex(16),
                intents=int(data.get("intents") or 0),
                shard=data.get("shard"),
                connection=connection,
            )
            self._forget_stale_sessions()
            self.sessions[session.id] = session
            self.identify_count += 1
            session.dispatch("READY", self._ready_payload(session))
            if session.intents & GUILDS:
                session.dispatch("GUILD_CREATE", self._guild_payload(session))
            self.connected.set()
            self._status_changed()
            log.debug("gateway session %s identified (intents %s)", session.id, session.intents)
            return session, False
        if op == RESUME:
            if not isinstance(data, dict):
                connection.close(DECODE_ERROR, "Error while decoding payload.")
                return session, True
            found = self.sessions.get(str(data.get("session_id")))
            if found is None or data.get("token") != self._token():
                connection.send({"op": INVALID_SESSION, "d": False})
                return session, False
            seq = int(data.get("seq") or 0)
            oldest = found.buffer[0]["s"] if found.buffer else found.seq + 1
            if seq > found.seq or (seq + 1 < oldest and found.seq > seq):
                connection.send({"op": INVALID_SESSION, "d": False})
                return session, False
            if found.connection is not None and found.connection is not connection:
                found.connection.close(4000, "session resumed elsewhere")
            found.connection = connection
            found.disconnected_at = None
            for payload in found.buffer:
                if payload["s"] > seq:
                    connection.send(payload)
            self.resume_count += 1
            found.dispatch("RESUMED", {})
            self.connected.set()
            self._status_changed()
            return found, False
        if session is None:
            connection.close(NOT_AUTHENTICATED, "You sent a payload prior to identifying.")
            return None, True
        if op in (PRESENCE_UPDATE, VOICE_STATE_UPDATE):
            return session, False
        if op == REQUEST_GUILD_MEMBERS:
            self._members_chunk(session, data if isinstance(data, dict) else {})
            return session, False
        connection.close(UNKNOWN_OPCODE, "Unknown opcode.")
        return session, True

    def _members_chunk(self, session: Session, request: JSON) -> None:
        members = self._members_payload()
        user_ids = request.get("user_ids")
        if user_ids:
            wanted = {str(u) for u in (user_ids if isinstance(user_ids, list) else [user_ids])}
            members = [m for m in members if m["user"]["id"] in wanted]
        else:
            query = str(request.get("query") or "").lower()
            members = [m for m in members if m["user"]["username"].lower().startswith(query)]
            limit = int(request.get("limit") or 0)
            if limit:
                members = members[:limit]
        chunk: JSON = {
            "guild_id": str(request.get("guild_id")),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
        }
        if request.get("nonce") is not None:
            chunk["nonce"] = request["nonce"]
        session.dispatch("GUILD_MEMBERS_CHUNK", chunk)
