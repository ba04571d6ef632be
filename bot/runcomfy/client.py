"""The RunComfy Model API client for Seedance 1.0 Lite image-to-video."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from bot.ops import metrics
from bot.runcomfy.calls import CancelOutcome, Submission, VideoInput
from bot.runcomfy.errors import (
    CODE_ERRORS,
    STATUS_ERRORS,
    ApiError,
    DeadlineExceededError,
    RateLimitedError,
    RunComfyError,
    ServerError,
    TransportError,
    UnknownSubmissionError,
    error_code,
)
from bot.runcomfy.pricing import ListPrice, parse_list_price
from bot.runcomfy.retry import parse_retry_after, retry_delay, should_retry
from bot.runcomfy.states import REQUEST_ID_RE, ProviderState, parse_state

log = logging.getLogger(__name__)

__all__ = ["CancelOutcome", "RunComfyClient", "Submission", "VideoInput"]

MODEL_ID = "bytedance/seedance-1-0/lite/image-to-video"
MODEL_PATH = f"/v1/models/{MODEL_ID}"

# Provider text ends up in logs and exception messages; keep it short.
_MAX_TEXT = 300
MAX_ANSWER_BYTES = 1 << 20
"""The largest API answer read: RunComfy's are a few hundred bytes, so anything near this is
garbage, and reading it whole could exhaust memory."""
_TOO_LARGE = "RunComfy's answer was larger than 1 MiB"


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: CIMultiDictProxy[str]
    body: Any
    text: str
    parsed: bool
    too_large: bool = False
    call: str = "other"
    """Which call this answers (submit, status, result, cancel, probe), for the metrics."""


class RunComfyClient:
    """Talks to RunComfy's Model API with a shared session; the token goes on each call only."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        token: str,
        base_url: str,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        submit_timeout: float = 90.0,
        submit_429_retries: int = 3,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        retry_base: float = 1.0,
        retry_cap: float = 30.0,
        on_outcome: Callable[[RunComfyError | None], None] | None = None,
    ) -> None:
        if not token.strip():
            raise ValueError("the RunComfy API token is empty")
        self._session = session
        self._token = token
        self._base_url = base_url.rstrip("/")
        self._origin = URL(self._base_url).origin()
        self._timeout = aiohttp.ClientTimeout(
            total=connect_timeout + read_timeout,
            sock_connect=connect_timeout,
            sock_read=read_timeout,
        )
        # The paid submit gets longer: RunComfy's own clients give it 60-90 s, and a submit cut
        # short by our timeout is an unknown submission that may still run and be charged.
        self._submit_timeout = aiohttp.ClientTimeout(
            total=connect_timeout + submit_timeout,
            sock_connect=connect_timeout,
            sock_read=submit_timeout,
        )
        self._submit_429_retries = submit_429_retries
        self._sleep = sleep
        self._retry_base = retry_base
        self._retry_cap = retry_cap
        # Told about every call's outcome (None for a success): the circuit breaker listens.
        self._on_outcome = on_outcome

    def __repr__(self) -> str:
        return f"RunComfyClient(base_url={self._base_url!r})"

    @property
    def base_url(self) -> str:
        return self._base_url

    def submission_for(
        self,
        request_id: str,
        *,
        status_url: str | None = None,
        result_url: str | None = None,
        cancel_url: str | None = None,
    ) -> Submission:
        """A Submission for a known request id, preferring the given URLs over built ones.

        A given URL is used only when it points at the configured base URL's origin,
        because the API token is sent to it.
        """
        if not REQUEST_ID_RE.fullmatch(request_id):
            raise ValueError(f"not a RunComfy request id: {request_id[:140]!r}")
        return Submission(
            request_id=request_id,
            status_url=self._own_url(status_url, request_id, "status"),
            result_url=self._own_url(result_url, request_id, "result"),
            cancel_url=self._own_url(cancel_url, request_id, "cancel"),
        )

    async def submit(self, inp: VideoInput) -> Submission:
        """Submit once (see `_submit`), reporting the outcome to the listener."""
        try:
            sub = await self._submit(inp)
        except RunComfyError as exc:
            self._report(exc)
            raise
        self._report(None)
        return sub

    async def probe(self) -> None:
        """A cheap authenticated call (the model's page) that proves the service answers."""
        try:
            answer = await self._send("GET", f"{self._base_url}/v1/models/{MODEL_ID}", call="probe")
            self._raise_for_status(answer, request_id=None)
        except RunComfyError as exc:
            self._report(exc)
            raise
        self._report(None)

    async def list_price(self) -> ListPrice | None:
        """The model's published price (``GET /v1/models/{id}``), or None when the provider
        gives none the bot understands or cannot be asked; never raises for that."""
        try:
            answer = await self._send("GET", f"{self._base_url}/v1/models/{MODEL_ID}", call="price")
            self._raise_for_status(answer, request_id=None)
        except RunComfyError as exc:
            log.info("RunComfy's model price is not available: %s", exc)
            return None
        return parse_list_price(answer.body)

    def _report(self, exc: RunComfyError | None) -> None:
        if self._on_outcome is not None:
            self._on_outcome(exc)

    async def _submit(self, inp: VideoInput) -> Submission:
        """Submit once; only a 429 (a refusal) is retried, a few times, honouring Retry-After.

        Raises UnknownSubmissionError when the outcome is unknown (timeout, reset, 5xx, or
        an answer without a valid request id), TransportError (with ``sent`` False) when no
        connection could be made, and a typed ApiError when RunComfy refused.
        """
        url = self._base_url + MODEL_PATH
        payload = inp.to_payload()
        attempt = 0
        while True:
            try:
                answer = await self._send(
                    "POST", url, payload=payload, limits=self._submit_timeout, call="submit"
                )
            except TransportError as exc:
                if not exc.sent:
                    raise
                raise UnknownSubmissionError(
                    f"the submit may or may not have reached RunComfy ({exc})"
                ) from exc
            try:
                self._raise_for_status(answer, request_id=None)
            except RateLimitedError as exc:
                if attempt >= self._submit_429_retries:
                    raise
                delay = retry_delay(
                    attempt, exc.retry_after, base=self._retry_base, cap=self._retry_cap
                )
                log.warning("RunComfy refused the submit (429); trying again in %.1fs", delay)
                await self._sleep(delay)
                attempt += 1
                continue
            except ServerError as exc:
                raise UnknownSubmissionError(
                    f"RunComfy failed while taking the submit ({exc})",
                    request_id=_valid_id(answer.body),
                    status=answer.status,
                    detail=exc.detail,
                ) from exc
            return self._submission_from(answer)

    async def status(self, sub: Submission) -> ProviderState:
        """One status call."""
        answer = await self._send("GET", sub.status_url, request_id=sub.request_id, call="status")
        return self._state_from(answer, sub)

    async def result(self, sub: Submission) -> ProviderState:
        """One result call: the current state while unfinished, the video URL once completed."""
        url = URL(sub.result_url).update_query(include_cost="true")
        answer = await self._send("GET", url, request_id=sub.request_id, call="result")
        return self._state_from(answer, sub)

    async def cancel(self, sub: Submission) -> CancelOutcome:
        """Ask RunComfy to cancel; only a queued job can be cancelled."""
        answer = await self._send("POST", sub.cancel_url, request_id=sub.request_id, call="cancel")
        self._raise_for_status(answer, request_id=sub.request_id)
        body = answer.body if isinstance(answer.body, Mapping) else {}
        outcome = body.get("outcome")
        if isinstance(outcome, str) and outcome.strip().lower() in ("cancelled", "canceled"):
            return CancelOutcome.CANCELLED
        log.info("RunComfy did not cancel %s (outcome %r)", sub.request_id, outcome)
        return CancelOutcome.NOT_CANCELLABLE

    async def poll(self, sub: Submission, *, deadline: float) -> ProviderState:
        """One logical poll of the result, retrying transient failures until ``deadline``.

        ``deadline`` is an event-loop time. Raises DeadlineExceededError once it passes and
        re-raises errors that retrying cannot fix.
        """
        loop = asyncio.get_running_loop()
        attempt = 0
        last_error: RunComfyError | None = None
        while True:
            if loop.time() >= deadline:
                raise _deadline_error(sub, last_error)
            try:
                async with asyncio.timeout_at(deadline):
                    state = await self.result(sub)
                self._report(None)
                return state
            except TimeoutError as exc:
                raise _deadline_error(sub, last_error) from exc
            except RunComfyError as exc:
                self._report(exc)
                if not should_retry(exc):
                    raise
                last_error = exc
                hint = exc.retry_after if isinstance(exc, ApiError) else None
                delay = retry_delay(attempt, hint, base=self._retry_base, cap=self._retry_cap)
                delay = min(delay, max(0.0, deadline - loop.time()))
                log.warning("Polling %s failed (%s); retrying in %.1fs", sub.request_id, exc, delay)
                await self._sleep(delay)
                attempt += 1

    def _own_url(self, given: str | None, request_id: str, action: str) -> str:
        if given:
            try:
                same_origin = URL(given).origin() == self._origin
            except ValueError:
                same_origin = False
            if same_origin:
                return given
            log.warning(
                "Ignoring a %s URL for %s outside %s; using the standard path",
                action,
                request_id,
                self._origin,
            )
        return f"{self._base_url}/v1/requests/{request_id}/{action}"

    def _submission_from(self, answer: _Answer) -> Submission:
        request_id = _valid_id(answer.body)
        if request_id is None:
            error = UnknownSubmissionError(
                "RunComfy accepted the submit without a valid request id",
                status=answer.status,
                detail=answer.text,
            )
            metrics.provider_error(answer.call, error)
            raise error
        body: Mapping[str, Any] = answer.body

        def url(key: str) -> str | None:
            value = body.get(key)
            return value if isinstance(value, str) else None

        return self.submission_for(
            request_id,
            status_url=url("status_url"),
            result_url=url("result_url"),
            cancel_url=url("cancel_url"),
        )

    def _state_from(self, answer: _Answer, sub: Submission) -> ProviderState:
        self._raise_for_status(answer, request_id=sub.request_id)
        try:
            if not isinstance(answer.body, Mapping):
                raise ServerError(
                    "RunComfy's answer was not a JSON object",
                    status=answer.status,
                    detail=answer.text,
                    request_id=sub.request_id,
                )
            return parse_state(answer.body, request_id=sub.request_id)
        except RunComfyError as exc:
            metrics.provider_error(answer.call, exc)
            raise

    async def _send(
        self,
        method: str,
        url: str | URL,
        *,
        payload: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        limits: aiohttp.ClientTimeout | None = None,
        call: str,
    ) -> _Answer:
        """Make one call and read the whole answer; connection trouble becomes TransportError."""
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        started = time.perf_counter()
        try:
            async with self._session.request(
                method,
                url,
                json=payload,
                headers=headers,
                timeout=limits or self._timeout,
                allow_redirects=False,
                raise_for_status=False,
            ) as resp:
                raw = await _read_capped(resp, MAX_ANSWER_BYTES)
                status, resp_headers = resp.status, resp.headers
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            error = TransportError(
                self._scrub(f"could not connect to RunComfy: {exc}"),
                request_id=request_id,
                sent=False,
            )
            metrics.provider_called(call, time.perf_counter() - started, error)
            raise error from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            what = "timed out" if isinstance(exc, TimeoutError) else "failed"
            error = TransportError(
                self._scrub(f"the call to RunComfy {what}: {type(exc).__name__} {exc}".strip()),
                request_id=request_id,
            )
            metrics.provider_called(call, time.perf_counter() - started, error)
            raise error from exc
        metrics.provider_called(call, time.perf_counter() - started)
        log.debug("RunComfy %s %s -> %s", method, URL(url).path, status)
        if raw is None:
            log.warning("RunComfy %s %s answered more than %d bytes", method, URL(url).path,
                        MAX_ANSWER_BYTES)  # fmt: skip
            return _Answer(
                status, resp_headers, None, _TOO_LARGE, parsed=False, too_large=True, call=call
            )
        text = self._scrub(raw.decode("utf-8", errors="replace"))
        try:
            body = self._scrub(json.loads(text)) if text.strip() else None
            parsed = True
        except ValueError:
            body, parsed = None, False
        return _Answer(status, resp_headers, body, text[:_MAX_TEXT], parsed=parsed, call=call)

    def _raise_for_status(self, answer: _Answer, *, request_id: str | None) -> None:
        """Raise the typed error an answer stands for; return quietly for a usable success."""
        if answer.too_large:
            self._raise(
                ServerError, answer, _TOO_LARGE, code=None, detail=None, request_id=request_id
            )
        body = answer.body if isinstance(answer.body, Mapping) else {}
        has_code, code = error_code(body.get("error_code"))
        if 200 <= answer.status < 300 and not has_code:
            if not answer.parsed:
                self._raise(
                    ServerError,
                    answer,
                    "RunComfy's answer was not JSON",
                    code=None,
                    detail=answer.text,
                    request_id=request_id,
                )
            return
        message = body.get("error_message") or body.get("message") or _reason(answer)
        detail = body.get("detail") if body else answer.text or None
        if answer.status == 429:
            cls: type[ApiError] = RateLimitedError
        elif code in CODE_ERRORS:
            cls = CODE_ERRORS[code]
        elif answer.status in STATUS_ERRORS:
            cls = STATUS_ERRORS[answer.status]
        elif answer.status >= 500:
            cls = ServerError
        else:
            cls = ApiError
        self._raise(cls, answer, str(message), code=code, detail=detail, request_id=request_id)

    def _raise(
        self,
        cls: type[ApiError],
        answer: _Answer,
        message: str,
        *,
        code: int | None,
        detail: Any,
        request_id: str | None,
    ) -> NoReturn:
        retry_after = parse_retry_after(answer.headers.get("Retry-After"), datetime.now(UTC))
        error = cls(
            message[:_MAX_TEXT],
            status=answer.status,
            code=code,
            detail=detail,
            retry_after=retry_after,
            request_id=request_id,
        )
        metrics.provider_error(answer.call, error)
        raise error

    def _scrub(self, value: Any) -> Any:
        """Remove the token from text before it reaches logs or exceptions."""
        if isinstance(value, str):
            return value.replace(self._token, "[redacted]")
        if isinstance(value, Mapping):
            return {self._scrub(str(k)): self._scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrub(v) for v in value]
        return value


async def _read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is known to be longer than ``limit`` bytes."""
    if resp.content_length is not None and resp.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _valid_id(body: Any) -> str | None:
    if not isinstance(body, Mapping):
        return None
    value = body.get("request_id")
    if isinstance(value, str) and REQUEST_ID_RE.fullmatch(value):
        return value
    return None


def _reason(answer: _Answer) -> str:
    return f"HTTP {answer.status} without an error message"


def _deadline_error(sub: Submission, last_error: RunComfyError | None) -> DeadlineExceededError:
    message = "the job deadline passed while waiting for RunComfy"
    if last_error is not None:
        message += f" (last error: {last_error})"
    return DeadlineExceededError(message, request_id=sub.request_id)
