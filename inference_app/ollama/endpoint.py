"""What every Ollama view under ``/api`` shares: allowed methods, the JSON body, and Ollama's
error shape for anything that goes wrong before the response starts."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from inference_app.dispatch import Unavailable
from project.ollama_errors import OllamaError

View = Callable[..., Coroutine[Any, Any, HttpResponseBase]]


def ollama_endpoint(*methods: str) -> Callable[[View], View]:
    """Allow ``methods`` only and turn OllamaError into ``{"error": ...}``."""

    def decorate(view: View) -> View:
        @csrf_exempt
        @wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in methods:
                return OllamaError("method not allowed", status=405).response()
            try:
                return await view(request, *args, **kwargs)
            except OllamaError as exc:
                return exc.response()
            except Unavailable as exc:
                response = OllamaError(str(exc), status=503).response()
                response["Retry-After"] = str(exc.retry_after)
                return response

        return wrapper

    return decorate


def read_json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        raw = request.body
    except RequestDataTooBig:
        raise OllamaError("request body too large", status=413) from None
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise OllamaError("invalid JSON in the request body") from None
    if not isinstance(body, dict):
        raise OllamaError("the request body must be a JSON object")
    return body


def event_error(event: dict[str, Any]) -> OllamaError:
    """A worker's error event, as Ollama would answer it."""
    return OllamaError(event["message"], status=int(event.get("status", 500)))
