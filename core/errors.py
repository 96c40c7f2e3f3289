"""The error envelope and the exceptions that produce it.

Handlers and plugins raise :class:`ApiError` subclasses; the error middleware
turns them into ``{"error": {"code", "message", "details"}}`` with the right
status.  Anything else becomes a 500 whose body says nothing about the cause
(the log has it, tied to the request id).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Detail:
    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class ApiError(Exception):
    """An error a client caused or must know about; never carries SQL or driver text."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: list[Detail] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = [d.as_dict() for d in self.details]
        return {"error": error}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"


class Conflict(ApiError):
    status, code = 409, "conflict"


class RequestTimeout(ApiError):
    """The client did not send its request (the body) in time."""

    status, code = 408, "request_timeout"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class ValidationFailed(ApiError):
    status, code = 422, "validation_error"


class RateLimited(ApiError):
    status, code = 429, "rate_limited"


class ClientClosedRequest(ApiError):
    """The client went away before its request was read: nobody gets the answer, and
    it is no server error (logged at debug as status 499)."""

    status, code = 499, "client_closed_request"


class ServiceUnavailable(ApiError):
    """A 503; always tells the client when to try again (``Retry-After``, default 1 s)."""

    status, code = 503, "service_unavailable"

    def __init__(self, message: str, details: list[Detail] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message, details, {"Retry-After": "1", **(headers or {})})


def invalid(path: str, message: str) -> ValidationFailed:
    """A 422 for one bad value, naming where it is."""
    return ValidationFailed(f"{path}: {message}", [Detail(path, message)])


class ConfigError(Exception):
    """A startup problem: names the setting (or plugin) and how to fix it."""
