"""Who may use the sandbox page: the person who started it, and no web page they visit.

Every page route and the events websocket want the run's key (from the printed address, then a
cookie), a Host that names this sandbox and, where the browser says where a request comes from,
this page's own origin; anything else gets 403. The page reads bounded bodies only (413). The
bot's own REST API and gateway are not behind this: they authenticate with the bot token.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web
from yarl import URL

from .wire import json_response

PAGE_BODY_LIMIT = 32 * 1024 * 1024
"""The largest request the page reads. The bot itself refuses images of 30 MB and more, so a
picture just under that (plus the form around it) still reaches the bot and the person sees
the bot's own answer; anything larger is refused with 413 before it is held in memory."""

# The page loads only its own script and stylesheet and talks only to its own origin; pictures
# and videos may come from the bot's embeds (http or https) and are never scripts.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data: blob: http: https:; media-src 'self' blob: http: https:; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_WILDCARD_HOSTS = {"0.0.0.0", "::", ""}
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback_host(host: str) -> bool:
    """Whether an address to listen on is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _refused(request: web.Request, message: str) -> web.Response:
    if request.path.startswith("/sandbox/"):
        return json_response({"error": message}, status=403)
    return web.Response(status=403, text=message)


def _too_large() -> web.Response:
    response = json_response(
        {
            "error": f"Request too large: the sandbox page takes at most "
            f"{PAGE_BODY_LIMIT // (1024 * 1024)} MiB at once (the bot refuses images of "
            "30 MB and more anyway)."
        },
        status=413,
    )
    # Unread bytes may follow; closing spares reading them just to keep the connection.
    response.force_close()
    return response


class PageAccess:
    """The run's key, and the checks every page request passes before its handler runs."""

    def __init__(self, base_url: Callable[[], str]) -> None:
        self._base_url = base_url
        self.key = secrets.token_urlsafe(32)

    @property
    def url(self) -> str:
        """The address to open: the page with the run's key."""
        return f"{self._base_url()}/?key={self.key}"

    @property
    def _cookie_name(self) -> str:
        # Cookies ignore ports: two sandboxes on one machine must not overwrite each other's.
        return f"sandbox-key-{URL(self._base_url()).port}"

    def remember(self, response: web.StreamResponse) -> None:
        """Give the browser the key as a cookie only this page's own requests carry."""
        response.set_cookie(self._cookie_name, self.key, path="/", httponly=True, samesite="Strict")

    def guard(self, handler: Handler) -> Handler:
        """``handler`` behind the key, Host and origin checks, with a bounded body."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            refusal = self._refusal(request)
            if refusal is not None:
                return refusal
            if request.can_read_body:
                length = request.content_length
                if length is not None and length > PAGE_BODY_LIMIT:
                    return _too_large()
                # The application takes large bodies for the bot's uploads; the page does not.
                request = request.clone(client_max_size=PAGE_BODY_LIMIT)
            try:
                response = await handler(request)
            except web.HTTPRequestEntityTooLarge:
                return _too_large()
            if not response.prepared:
                response.headers.update(_SECURITY_HEADERS)
            return response

        return guarded

    def _refusal(self, request: web.Request) -> web.Response | None:
        host = request.host
        if not self._host_allowed(host):
            # Another name for this machine (DNS rebinding) or a confused proxy.
            return _refused(request, f"Refused: {host} is not this sandbox's address.")
        origin = request.headers.get("Origin")
        own_origin = f"{request.scheme}://{host}".lower()
        foreign_origin = origin is not None and origin.lower() != own_origin
        # Browsers send no Origin on plain GETs such as <img> or <script> tags; another port
        # of this machine counts as the same site for cookies, but not for Sec-Fetch-Site.
        foreign_fetch = request.headers.get("Sec-Fetch-Site") in ("cross-site", "same-site")
        navigating = request.headers.get("Sec-Fetch-Mode") == "navigate"
        if foreign_origin or (foreign_fetch and not navigating):
            return _refused(request, "Refused: the request came from another web page.")
        if not self._has_key(request):
            return _refused(
                request,
                "This sandbox page opens only from the address `seedance-bot sandbox` printed "
                "when it started (the one ending in ?key=…).",
            )
        return None

    def _has_key(self, request: web.Request) -> bool:
        expected = self.key.encode()
        return any(
            given and hmac.compare_digest(given.encode(), expected)
            for given in (request.query.get("key"), request.cookies.get(self._cookie_name))
        )

    def _host_allowed(self, host: str) -> bool:
        bound = URL(self._base_url())
        name = bound.host or ""
        if name in _WILDCARD_HOSTS:
            # Listening everywhere: the machine's names and addresses are many and unknown
            # here, so the key (and the origin checks) alone keep other sites out.
            return True
        names = {name, *_LOOPBACK_NAMES} if is_loopback_host(name) else {name}
        return host.lower() in {f"{n}:{bound.port}" for n in names}
