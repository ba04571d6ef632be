"""The RunComfy error hierarchy: one base class, raised from one place in the client."""

from __future__ import annotations

from typing import Any


class RunComfyError(Exception):
    """Anything that went wrong talking to RunComfy; ``request_id`` is set when one is known."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id

    def __str__(self) -> str:
        message = super().__str__()
        if self.request_id:
            return f"{message} (request {self.request_id})"
        return message


class TransportError(RunComfyError):
    """The connection was refused, reset or dropped, or a timeout fired.

    ``sent`` is False only when no connection was ever established, so the request
    certainly never reached RunComfy.
    """

    def __init__(self, message: str, *, request_id: str | None = None, sent: bool = True) -> None:
        super().__init__(message, request_id=request_id)
        self.sent = sent


class ApiError(RunComfyError):
    """RunComfy answered with an error: an HTTP error status or a body holding ``error_code``."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: int | None = None,
        detail: Any = None,
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.status = status
        self.code = code
        self.detail = detail
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = f"RunComfy answered HTTP {self.status}"
        if self.code is not None:
            parts += f" with error {self.code}"
        return f"{parts}: {super().__str__()}"


class AuthError(ApiError):
    """The API token is missing, wrong or expired, the account is inactive, or not ours."""


class NoBalanceError(ApiError):
    """The RunComfy account has no balance left."""


class InputRejectedError(ApiError):
    """RunComfy refused the input (validation error or unknown model); see ``detail``."""


class NotFoundError(ApiError):
    """RunComfy does not know the request id, or it has expired."""


class RateLimitedError(ApiError):
    """Too many requests; ``retry_after`` holds the server's hint in seconds when it gave one."""


class ServerError(ApiError):
    """RunComfy or something in front of it failed (5xx, 408, internal error, garbled answer)."""


class UnknownStateError(RunComfyError):
    """RunComfy reported a state this client does not know; polling it further is pointless."""

    def __init__(self, state: str, *, request_id: str | None = None) -> None:
        super().__init__(f"RunComfy reported an unknown state {state!r}", request_id=request_id)
        self.state = state


class UnknownSubmissionError(RunComfyError):
    """Whether RunComfy accepted a submit is unknown; it must not be resubmitted silently.

    Carries what is known: the HTTP ``status`` when an answer arrived, the request id when
    a valid one was seen, and a short ``detail`` of the answer for the logs.
    """

    def __init__(
        self,
        message: str,
        *,
        request_id: str | None = None,
        status: int | None = None,
        detail: Any = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.status = status
        self.detail = detail


class DeadlineExceededError(RunComfyError):
    """The job's deadline passed before RunComfy gave an answer."""


# Which error each answer means: by RunComfy's error code first, else by HTTP status.
CODE_ERRORS: dict[int, type[ApiError]] = {
    400001: InputRejectedError,
    400002: NoBalanceError,
    400004: AuthError,
    403001: AuthError,
    404001: NotFoundError,
    422001: InputRejectedError,
    500001: ServerError,
}
STATUS_ERRORS: dict[int, type[ApiError]] = {
    400: InputRejectedError,
    401: AuthError,
    402: NoBalanceError,
    403: AuthError,
    404: NotFoundError,
    408: ServerError,
    422: InputRejectedError,
    429: RateLimitedError,
}


def error_code(value: Any) -> tuple[bool, int | None]:
    """Whether a body's ``error_code`` marks an error, and the code when it is a number."""
    if value is None or value is False or value in ("", 0):
        return False, None
    if isinstance(value, int):
        return True, value
    if isinstance(value, str) and value.strip().isdigit():
        code = int(value.strip())
        return code != 0, code or None
    return True, None
