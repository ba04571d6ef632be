"""The API's answers when something is wrong: its JSON error body, and a dropped connection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from sandbox.runcomfy.faults import Fault

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Documented error codes by HTTP status (runcomfy-api.md, "Errors"); statuses without one
# get a bare message, as a gateway in front of the API would send.
DEFAULT_CODES = {
    400: 400001,
    401: 400004,
    402: 400002,
    403: 403001,
    404: 404001,
    # runcomfy-api.md ("Errors") documents no code for a body over the limit; 413001 follows
    # its scheme of the HTTP status followed by a serial (400001, 403001, 404001, 422001).
    413: 413001,
    422: 422001,
    500: 500001,
}
DEFAULT_MESSAGES = {
    400: "Invalid model id",
    401: "Invalid or expired API token",
    402: "Insufficient balance",
    403: "The request belongs to another account",
    404: "Unknown or expired request id",
    408: "Request timeout",
    413: "Request body too large",
    422: "Validation error",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown routes and methods answer with the API's JSON error body too."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error(exc.status, message=exc.reason)


def error(
    status: int,
    code: int | None = None,
    message: str | None = None,
    *,
    detail: Any = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """The API's error body: ``{"error_code", "error_message", "detail"?}``."""
    code = DEFAULT_CODES.get(status) if code is None else code
    text = message or DEFAULT_MESSAGES.get(status, "Error")
    body: dict[str, Any] = (
        {"message": text} if code is None else {"error_code": code, "error_message": text}
    )
    if detail is not None:
        body["detail"] = detail
    return web.json_response(body, status=status, headers=dict(headers or {}))


def drop(request: web.Request) -> web.Response:
    """Close the connection without an answer."""
    if request.transport is not None:
        request.transport.close()
    # Nothing reaches the client: the transport is already closed.
    return web.Response(status=204)


async def misbehave(
    fault: Fault, request: web.Request, closing: asyncio.Event
) -> web.StreamResponse | None:
    """Answer as a scripted fault says; None when the request should then be handled normally
    (a hang that ran its time)."""
    if fault.kind == "hang":
        try:
            await asyncio.wait_for(closing.wait(), fault.seconds)
        except TimeoutError:
            return None
        return drop(request)
    if fault.kind == "drop":
        return drop(request)
    if fault.kind == "json":
        return web.json_response(fault.body, status=fault.status, headers=fault.headers)
    if fault.kind == "error_code":
        return error(200, fault.error_code, fault.message, headers=fault.headers)
    return error(fault.status, fault.error_code, fault.message, headers=fault.headers)


async def listen(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on host:port; the runner and the URL it answers on."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    bound_host, bound_port = runner.addresses[0][:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return runner, f"http://{shown}:{bound_port}"
