"""The decorator every API view wears, and the one JSON body reader.

``api_endpoint(family, *methods)`` allows ``methods`` only, answers an ``ApiError`` in the
family's shape, and answers anything unexpected with a 500 in that shape too (logged with its
traceback and the request id), never with Django's HTML page. ``context_view`` does the same
for a view that takes who asks (``project.edge.context.RequestContext``) as an argument: the
family decorators (``openai_endpoint``...) are it.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any, Concatenate

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from project.edge.context import RequestContext, exchange_of, request_context
from project.edge.families import error_response
from project.errors import ApiError, BodyTooLarge, InvalidJson, MethodNotAllowed

log = logging.getLogger(__name__)

View = Callable[..., Coroutine[Any, Any, HttpResponseBase]]
# A view told who asks: ``view(request, context, *url_arguments)``.
ContextView = Callable[
    Concatenate[HttpRequest, RequestContext, ...], Coroutine[Any, Any, HttpResponseBase]
]


def api_endpoint(family: str, *methods: str) -> Callable[[View], View]:
    def decorate(view: View) -> View:
        @csrf_exempt
        @wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in methods:
                return error_response(family, MethodNotAllowed(request.method or ""))
            try:
                return await view(request, *args, **kwargs)
            except ApiError as exc:
                return error_response(family, exc)
            except Exception:
                return internal_error(family, request)

        return wrapper

    return decorate


def context_view(family: str, *methods: str) -> Callable[[ContextView], View]:
    """``api_endpoint``, for a view that takes who asks as its second argument: the context
    the key middleware built (``project.edge.context``)."""

    def decorate(view: ContextView) -> View:
        @wraps(view)
        async def with_context(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            return await view(request, request_context(request), *args, **kwargs)

        return api_endpoint(family, *methods)(with_context)

    return decorate


def internal_error(family: str, request: HttpRequest) -> HttpResponseBase:
    """A 500 in ``family``'s shape for the exception being handled, logged with its
    traceback under an id the answer names, so that a report can be matched to the log."""
    request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
    log.exception("%s %s failed (request %s)", request.method, request.path, request_id)
    error = ApiError(
        f"internal error (request {request_id})",
        status=500,
        code="internal_error",
        error_type="server_error",
        headers={"X-Request-Id": request_id},
    )
    return error_response(family, error)


def read_json_body(request: HttpRequest, *, empty_is_object: bool = False) -> dict[str, Any]:
    """The request's JSON object. Parsed once per request: the key middleware reads the
    ``model`` from it before the view does. ``empty_is_object``: an empty body is ``{}``
    (Ollama's model endpoints take one); otherwise it is invalid JSON."""
    exchange = exchange_of(request)
    cached = exchange.body
    if cached is None:
        cached = exchange.body = _parse(request)
    if isinstance(cached, ApiError):
        if empty_is_object and isinstance(cached, _EmptyBody):
            return {}
        raise cached
    return dict(cached)  # a copy: a view may change its body without changing the cache


class _EmptyBody(InvalidJson):
    pass


def _parse(request: HttpRequest) -> dict[str, Any] | ApiError:
    try:
        raw = request.body
    except RequestDataTooBig:
        return BodyTooLarge()
    if not raw.strip():
        return _EmptyBody("the request body is not valid JSON")
    try:
        body = json.loads(raw)
    except RecursionError:
        return InvalidJson("the request body is nested too deeply")
    except (ValueError, UnicodeDecodeError):
        return InvalidJson("the request body is not valid JSON")
    if not isinstance(body, dict):
        return InvalidJson("the request body must be a JSON object")
    return body
