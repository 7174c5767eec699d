"""Errors a view, or model code both processes share, raises; the endpoint decorator of the
HTTP edge (``project.edge``) answers each in its API family's shape.

An error is a class that knows its own status and code, as Zulip's ``JsonableError`` does:
call sites raise it and pass only what varies (``raise NotFound("No such file: x")``).
"""

from __future__ import annotations

from typing import Any

from project.validation import first_error


class ApiError(Exception):
    """A request that gets an error answer. ``status`` is the HTTP status; ``code``,
    ``error_type`` and ``param`` fill OpenAI's ``error`` object (other families use what their
    shape has room for); ``headers`` go on the response."""

    status = 400
    code: str | None = "invalid_value"
    error_type = "invalid_request_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        error_type: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        if error_type is not None:
            self.error_type = error_type
        self.param = param
        self.headers = dict(headers or {})

    def message_for(self, family: str) -> str:
        """The message as ``family`` words it (most errors word it one way)."""
        return self.message


class InvalidJson(ApiError):
    code = "invalid_json"


class BodyTooLarge(ApiError):
    status = 413
    code = "request_too_large"

    def __init__(self) -> None:
        super().__init__("request body too large")


class NotFound(ApiError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"

    def __init__(self, method: str) -> None:
        super().__init__(f"method {method} not allowed")


class ValidationFailed(ApiError):
    """The first of a serializer's errors, named by its field path (``messages.0.role``)."""

    def __init__(self, errors: Any) -> None:
        param, message = first_error(errors)
        super().__init__(f"{param}: {message}" if param else message, param=param)


class ServiceUnavailable(ApiError):
    """No worker can take the request now: the client should come back after
    ``retry_after`` seconds."""

    status = 503
    code = "unavailable"
    error_type = "server_error"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after
