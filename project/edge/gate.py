"""What the web process decides on a request's head alone, before any of its body is read.

Django's ASGI handler reads a whole body into a temporary file before any middleware runs, so
a refusal by the key middleware, or a size check, would come after a client without a key had
its gigabytes spooled. ``EdgeGate`` wraps the handler and, on the API paths (``/v1``, ``/api``,
``/metrics``), answers at once in the family's error shape, reading nothing:

- 403 for a ``Host`` outside ``HERD_ALLOWED_HOSTS`` (a page that pointed its own name at a
  server on loopback: DNS rebinding);
- 403, with keys off, for a call that changes something (any method but GET, HEAD and
  OPTIONS) from a browser ``Origin`` that is neither in ``HERD_ORIGINS`` nor the server's own,
  as Ollama refuses them: no other site's page can pull, copy, create or delete models, or
  run them, through a browser on the same machine;
- 401, with keys required, for a request without a key or with one that cannot be used
  (unknown, revoked, expired, of a deactivated user). What a usable key may do is the key
  middleware's to decide (``accounts.middleware``). Preflights carry no key: CORS answers them;
- 413 for a body declared larger than the limit (``HERD_MAX_BODY``; ``HERD_MAX_UPLOAD`` and
  room for the form around it on ``/v1/files``), and for one that grows past it as it
  streams in: reading stops there and nothing more is kept.

Blob uploads (``/api/blobs/``) have their own receiver, inside this gate: the 401 applies to
them, the size limit is theirs (``HERD_MAX_BLOB``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.http.response import HttpResponseBase
from django.utils import timezone

from accounts.lookup import afind_key, why_unusable
from accounts.middleware import MISSING_KEY, READ_METHODS, area_of, refusal, secret_of
from project.edge.request_log import error_message, format_line
from project.edge.request_log import log as request_log
from project.errors import BodyTooLarge

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Any, Receive, Send], Awaitable[None]]

BLOBS = "/api/blobs/"
UPLOADS = "/v1/files"
# What a multipart form adds around an upload's bytes, at most: the upload's own limit is
# the view's to answer (``file_too_large``).
FORM_ROOM = 1 << 20


def body_limit(path: str) -> int | None:
    """The most bytes a body to ``path`` may have; None where the gate sets none."""
    if path.startswith(BLOBS):
        return None
    if path == UPLOADS:
        return int(settings.HERD_MAX_UPLOAD) + FORM_ROOM
    return int(settings.MAX_BODY_BYTES)


def origin_allowed(origin: str, host: str) -> bool:
    """``origin`` is listed in ``HERD_ORIGINS`` (``*``: any), or is the server itself."""
    allowed = settings.HERD_ORIGINS
    if "*" in allowed or origin in allowed:
        return True
    return bool(host) and urlsplit(origin).netloc.lower() == host.lower()


class EdgeGate:
    """ASGI middleware around the Django handler (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        area = area_of(str(scope.get("path", ""))) if scope.get("type") == "http" else None
        if area is None:
            await self.app(scope, receive, send)
            return
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope.get("headers", [])
        }
        arrived = time.monotonic()
        refused = await self._refusal(area, str(scope.get("method", "")), headers)
        limit = body_limit(str(scope["path"]))
        declared = headers.get("content-length", "")
        if refused is None and limit is not None and declared.isdigit() and int(declared) > limit:
            refused = self._too_large(area)
        if refused is not None:
            _log_refusal(scope, refused, arrived)
            await _send(send, self._with_cors(refused, headers))
            return
        if limit is None:
            await self.app(scope, receive, send)
            return
        counted = _CountedBody(receive, limit)
        started = False

        async def noted_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        await self.app(scope, counted, noted_send)
        if counted.over and not started:
            # Django stopped reading at the disconnect the counter made up, and answered
            # nothing: the answer is ours.
            too_large = self._too_large(area)
            _log_refusal(scope, too_large, arrived)
            await _send(send, self._with_cors(too_large, headers))

    async def _refusal(
        self, area: str, method: str, headers: dict[str, str]
    ) -> HttpResponseBase | None:
        host = headers.get("host", "")
        domain, _port = split_domain_port(host)
        if host and not validate_host(domain, settings.ALLOWED_HOSTS):
            message = f"the host '{host}' is not one this server answers to: see HERD_ALLOWED_HOSTS"
            return refusal(area, 403, message, "host_not_allowed", type_="permission_error")
        if not settings.HERD_AUTH_REQUIRED:
            origin = headers.get("origin")
            changes = method not in READ_METHODS
            if origin is not None and changes and not origin_allowed(origin, host):
                message = f"requests from the origin '{origin}' are refused: see HERD_ORIGINS"
                return refusal(area, 403, message, "origin_not_allowed", type_="permission_error")
            return None
        if method == "OPTIONS":
            return None
        secret = secret_of(headers.get("authorization", ""), headers.get("x-api-key", ""))
        if secret is None:
            return refusal(area, 401, MISSING_KEY, "missing_api_key")
        unusable = why_unusable(await afind_key(secret), timezone.now())
        if unusable is not None:
            return refusal(area, 401, unusable, "invalid_api_key")
        return None

    @staticmethod
    def _too_large(area: str) -> HttpResponseBase:
        error = BodyTooLarge()
        return refusal(area, error.status, error.message, error.code or "request_too_large")

    @staticmethod
    def _with_cors(response: HttpResponseBase, headers: dict[str, str]) -> HttpResponseBase:
        """A refusal carries the CORS headers an allowed origin's page needs to read it, as
        the key middleware's refusals do (django-cors-headers adds them there)."""
        origin = headers.get("origin")
        if origin is None:
            return response
        allowed = settings.HERD_ORIGINS
        if "*" in allowed:
            response["Access-Control-Allow-Origin"] = "*"
        elif origin in allowed:
            response["Access-Control-Allow-Origin"] = origin
        else:
            return response
        response["Access-Control-Expose-Headers"] = ", ".join(settings.CORS_EXPOSE_HEADERS)
        response["Vary"] = "origin"
        return response


class _CountedBody:
    """``receive``, until the body passes ``limit`` bytes: then a disconnect, and no more."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive = receive
        self._limit = limit
        self._seen = 0
        self.over = False

    async def __call__(self) -> Message:
        if self.over:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self._seen += len(message.get("body", b""))
            if self._seen > self._limit:
                self.over = True
                return {"type": "http.disconnect"}
        return message


def _log_refusal(scope: Any, response: HttpResponseBase, arrived: float) -> None:
    """The request log's line for a request the gate answered: Django never saw it."""
    if not settings.HERD_LOG_REQUESTS:
        return
    client = scope.get("client") or ("-",)
    line = format_line(
        str(scope.get("method", "-")),
        str(scope.get("path", "")),
        response.status_code,
        arrived,
        client=str(client[0]),
        error=error_message(response),
    )
    request_log.info(line)


async def _send(send: Send, response: HttpResponseBase) -> None:
    body = bytes(getattr(response, "content", b""))
    headers = [
        (name.encode("latin-1"), str(value).encode("latin-1")) for name, value in response.items()
    ]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
