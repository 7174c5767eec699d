"""One log line per API request, as Ollama's server prints one: what a person reads to see
who asked what, and why a request was refused, without a proxy in front.

    POST /v1/messages 200 1.284s model=qwen3:8b key=laptop-ana prompt=17003 completion=12
    POST /v1/responses 400 0.004s model=tiny key=- prompt=- completion=- client=127.0.0.1
        error="tool_choice: forces the tool web_search, which this server cannot run ..."

(one line each; the logging format puts the time and level before it). The key is named by
its name, never by its secret; ``-`` where there is none (keys off, or refused before one was
found). The token counts are those the view noted (``accounts.usage``); a stream's line is
written when its last chunk has gone, so its counts and duration are the whole answer's. A
client error's line carries the message the client got. ``HERD_LOG_REQUESTS=off`` turns the
lines off; ``/metrics`` scrapes and the HTML pages are not logged.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase

from accounts.bodies import named_models
from accounts.usage import noted_tokens
from project.edge.context import request_context
from project.edge.families import family_of

log = logging.getLogger("herd.requests")

GetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]
# How much of an error message a line carries.
MAX_ERROR = 300


class RequestLogMiddleware:
    """Outermost on the API paths, so that refusals by the key check are logged too."""

    async_capable = True
    sync_capable = False

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not settings.HERD_LOG_REQUESTS or family_of(request.path_info) is None:
            return await self.get_response(request)
        started = time.monotonic()
        model = _model_of(request)
        response = await self.get_response(request)
        if isinstance(response, StreamingHttpResponse) and response.is_async:
            content = response.streaming_content
            response.streaming_content = _logged_at_the_end(
                content, request, response.status_code, model, started
            )
        else:
            error = error_message(response) if 400 <= response.status_code < 500 else None
            log.info(request_line(request, response.status_code, model, started, error))
        return response


async def _logged_at_the_end(
    content: Any, request: HttpRequest, status: int, model: str | None, started: float
) -> AsyncIterator[bytes]:
    ended = "client left"
    try:
        async with aclosing(content):
            async for chunk in content:
                yield chunk
        ended = ""
    finally:
        log.info(request_line(request, status, model, started, None, ended))


def request_line(
    request: HttpRequest,
    status: int,
    model: str | None,
    started: float,
    error: str | None,
    ended: str = "",
) -> str:
    key = request_context(request).key
    tokens = noted_tokens(request)
    return format_line(
        request.method or "-",
        request.path,
        status,
        started,
        client=request.META.get("REMOTE_ADDR") or "-",
        model=model,
        key=key.name if key is not None else None,
        tokens=(tokens.prompt, tokens.completion) if tokens is not None else None,
        error=error,
        ended=ended,
    )


def format_line(
    method: str,
    path: str,
    status: int,
    started: float,
    *,
    client: str,
    model: str | None = None,
    key: str | None = None,
    tokens: tuple[int, int] | None = None,
    error: str | None = None,
    ended: str = "",
) -> str:
    """One request's line; the edge gate writes its refusals with it too."""
    parts = [
        method,
        path,
        str(status),
        f"{time.monotonic() - started:.3f}s",
        f"model={model or '-'}",
        f"key={key or '-'}",
        f"prompt={tokens[0] if tokens is not None else '-'}",
        f"completion={tokens[1] if tokens is not None else '-'}",
        f"client={client}",
    ]
    if ended:
        parts.append(f"({ended})")
    if error:
        parts.append(f"error={json.dumps(error[:MAX_ERROR])}")
    return " ".join(parts)


def _model_of(request: HttpRequest) -> str | None:
    # As the key check reads it (the body is parsed once).
    name = named_models(request).model
    return name[:200] if name else None


def error_message(response: HttpResponseBase) -> str | None:
    """The message of an error body in any family's shape."""
    if "json" not in response.get("Content-Type", ""):
        return None
    try:
        body = json.loads(getattr(response, "content", b"") or b"null")
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return error if isinstance(error, str) else None
