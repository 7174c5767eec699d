"""API keys, limits, usage and metrics for ``/v1`` (``/v1/messages`` included), ``/api`` and
``/metrics``, around views that know nothing of them.

Per request, before the view: the key comes from the in-process cache (``accounts.lookup``),
every model the JSON body names is checked against the key's allow-list (a body under a
non-JSON ``Content-Type`` is refused with 415: ``accounts.bodies``), and one Redis pipeline both
checks the key's limits and counts the request as running. After the response has ended (for a
stream: after its last chunk, which is when the token counts are known), a second pipeline
counts the tokens against the key's windows and updates the metrics, and the ``UsageRecord`` is
written in a worker thread, off the response. The token counts are those of the request's
``Done`` (or ``Embeddings``) event, which the view noted on the request
(``accounts.usage.note_usage``); a stream whose client left before its end has them from the
request's event stream, when the worker finishes. While a stream runs, each chunk costs a
timestamp check.

Refusals: 401 for a missing, unknown, expired or revoked key, or one of a deactivated user;
415 for a body a JSON endpoint may not read; 403 for a model the key may not use, or for
model management (``POST /api/pull``, ``DELETE /api/delete``...) by a key whose user is not
staff; 429 past a limit, with ``Retry-After``. Each in the error shape of the API it
concerns. The ``/metrics`` scrape needs a key too, but counts in neither usage nor metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import redis
from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone

from accounts import metrics
from accounts.bodies import NamedModels, named_models, refused_media
from accounts.limits import LimitCheck, limits_now, queue_tokens
from accounts.lookup import KeyInfo, afind_key, why_unusable
from accounts.usage import Tokens, do_record_usage, noted_tokens, tokens_of_request
from models_app.names import InvalidModelName, normalize_model_name
from project.broker import async_client
from project.edge.context import RequestContext, attach
from project.edge.families import FAMILIES, error_response, family_of
from project.errors import ApiError

log = logging.getLogger(__name__)

METRICS = "metrics"
# Endpoints that change which models the server holds: when keys are required, only a key of
# a staff user may call them with anything but GET.
MANAGEMENT_PATHS = (
    "/api/pull",
    "/api/push",
    "/api/create",
    "/api/copy",
    "/api/delete",
    "/api/models",
    "/api/blobs",
)
READ_METHODS = ("GET", "HEAD", "OPTIONS")
MISSING_KEY = "missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'"

GetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]

# Usage writes run after their response; holding the tasks keeps them from being collected.
_background: set[asyncio.Future[Any]] = set()


def _spawn(awaitable: Awaitable[Any]) -> None:
    task = asyncio.ensure_future(awaitable)
    _background.add(task)
    task.add_done_callback(_background.discard)


def area_of(path: str) -> str | None:
    """The API family of ``path``, ``metrics`` for the scrape, None for the pages."""
    return METRICS if path == "/metrics" else family_of(path)


def presented_secret(request: HttpRequest) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``x-api-key: <key>``."""
    return secret_of(request.headers.get("Authorization", ""), request.headers.get("X-Api-Key", ""))


def secret_of(authorization: str, api_key: str) -> str | None:
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return api_key.strip() or None


def refusal(
    area: str,
    status: int,
    message: str,
    code: str,
    *,
    type_: str = "invalid_request_error",
    headers: dict[str, str] | None = None,
) -> HttpResponseBase:
    """An error response in the shape of the API at ``area``."""
    error = ApiError(message, status=status, code=code, error_type=type_, headers=headers)
    response: HttpResponseBase
    if area in FAMILIES:
        response = error_response(area, error)
    else:
        response = JsonResponse({"error": message}, status=status)
        for name, value in error.headers.items():
            response[name] = value
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="herd"'
    return response


@dataclass
class Metered:
    """What the middleware counts of one request between its arrival and its end."""

    request: HttpRequest
    key: KeyInfo | None
    model: str
    started: float
    endpoint: str = "unmatched"


class ApiKeyMiddleware:
    async_capable = True
    sync_capable = False

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        area = area_of(request.path_info)
        if area is None:
            return await self.get_response(request)
        started = time.monotonic()
        unsupported = refused_media(request) if area != METRICS else None
        named = named_models(request) if unsupported is None else NamedModels()
        model = _model_label(named.model)
        key: KeyInfo | None = None
        if settings.HERD_AUTH_REQUIRED:
            key, refused = await self._authenticate(request, area, named)
            if refused is not None:
                return refused
        if unsupported is not None:
            return refusal(area, 415, unsupported.message, unsupported.code or "")
        if area == METRICS:
            return await self.get_response(request)

        # Who asks, built once: the views take it as an argument and pass it on (dispatch
        # gives each key its turn in the lanes; batches record who created them).
        attach(request, RequestContext(key))
        ctx = Metered(request, key, model, started)
        check = LimitCheck(key, await limits_now()) if key is not None and key.limited else None
        headers: dict[str, str] = {}
        if check is None:
            # Nothing to decide before the view: count the request as running without
            # holding it up (the round trip is on the path to the first token).
            _spawn(_count_started())
        else:
            try:
                pipe = async_client().pipeline(transaction=False)
                queued = check.queue(pipe)
                metrics.queue_started(pipe)
                results = await pipe.execute()
            except redis.RedisError as exc:
                return refusal(area, 503, f"limits unavailable: {exc}", "service_unavailable")
            decision = check.decide(results[:queued])
            headers = decision.headers
            if not decision.allowed:
                response = refusal(
                    area,
                    429,
                    decision.message,
                    "rate_limit_exceeded",
                    type_=decision.reason,
                    headers=headers,
                )
                await self._finish(ctx, response.status_code, None, None)
                return response

        response = await self.get_response(request)
        for name, value in headers.items():
            response[name] = value
        match = request.resolver_match
        ctx.endpoint = "/" + match.route if match is not None else "unmatched"
        if isinstance(response, StreamingHttpResponse) and response.is_async:
            # Read the view's stream before replacing it: the getter wraps the current one.
            content = response.streaming_content
            response.streaming_content = self._relay(
                ctx, content, response.status_code, response.get("X-Request-Id")
            )
        else:
            # A synchronous stream (a file download) carries no token counts.
            await self._finish(ctx, response.status_code, noted_tokens(request), None)
        return response

    async def _authenticate(
        self, request: HttpRequest, area: str, named: NamedModels
    ) -> tuple[KeyInfo | None, HttpResponseBase | None]:
        secret = presented_secret(request)
        if secret is None:
            return None, refusal(area, 401, MISSING_KEY, "missing_api_key")
        key = await afind_key(secret)
        unusable = why_unusable(key, timezone.now())
        if key is None or unusable is not None:
            return None, refusal(area, 401, unusable or "", "invalid_api_key")
        for raw_model in named.all():
            if not _allows(key, raw_model):
                message = f"this API key may not use the model '{raw_model}'"
                refused = refusal(area, 403, message, "model_not_allowed", type_="permission_error")
                return key, refused
        managing = request.method not in READ_METHODS and request.path_info.startswith(
            MANAGEMENT_PATHS
        )
        if managing and not key.user_is_staff:
            message = "managing models needs a key of a staff user"
            return key, refusal(area, 403, message, "forbidden", type_="permission_error")
        return key, None

    async def _relay(
        self, ctx: Metered, content: Any, status: int, request_id: str | None
    ) -> AsyncIterator[bytes]:
        """Pass the stream through; time its first chunk."""
        ttft: float | None = None
        try:
            async with aclosing(content):
                async for chunk in content:
                    if ttft is None:
                        ttft = time.monotonic() - ctx.started
                    yield chunk
        except BaseException:
            # The client went away (or the stream failed): finish without holding it up.
            _spawn(self._finish_stream(ctx, status, request_id, ttft))
            raise
        await self._finish_stream(ctx, status, request_id, ttft)

    async def _finish_stream(
        self, ctx: Metered, status: int, request_id: str | None, ttft: float | None
    ) -> None:
        tokens = noted_tokens(ctx.request)
        if tokens is None and request_id:
            try:
                tokens = await tokens_of_request(request_id)
            except redis.RedisError:
                log.warning("could not read the token counts of request %s", request_id)
        await self._finish(ctx, status, tokens, ttft)

    async def _finish(
        self, ctx: Metered, status: int, tokens: Tokens | None, ttft: float | None
    ) -> None:
        """Count tokens and metrics (one round trip), then write the usage record in the
        background."""
        duration = time.monotonic() - ctx.started
        counts = tokens or Tokens()
        key = ctx.key
        try:
            pipe = async_client().pipeline(transaction=False)
            if key is not None and counts.total and (key.tokens_per_minute or key.tokens_per_day):
                queue_tokens(pipe, key.id, counts.total, await limits_now())
            metrics.queue_finished(
                pipe,
                model=ctx.model,
                endpoint=ctx.endpoint,
                status=status,
                prompt_tokens=counts.prompt,
                completion_tokens=counts.completion,
                duration=duration,
                ttft=ttft,
            )
            await pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not count tokens and metrics: %s", exc)
        fields = {
            "key_id": key.id if key else None,
            "user_id": key.user_id if key else None,
            "team_id": key.team_id if key else None,
            "model": ctx.model,
            "endpoint": ctx.endpoint,
            "method": ctx.request.method or "",
            "status": status,
            "prompt_tokens": counts.prompt,
            "completion_tokens": counts.completion,
            "duration_ms": duration * 1000,
            "ttft_ms": None if ttft is None else ttft * 1000,
        }
        _spawn(sync_to_async(do_record_usage, thread_sensitive=False)(fields))


async def _count_started() -> None:
    try:
        pipe = async_client().pipeline(transaction=False)
        metrics.queue_started(pipe)
        await pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not count a request as running: %s", exc)


def _model_label(raw: str | None) -> str:
    if raw is None:
        return ""
    try:
        return normalize_model_name(raw)
    except InvalidModelName:
        return raw[:200]


def _allows(key: KeyInfo, raw_model: str) -> bool:
    if key.allowed_models is None:
        return True
    try:
        return key.allows(normalize_model_name(raw_model))
    except InvalidModelName:
        return False
