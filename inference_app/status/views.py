"""``GET /api/status`` and ``GET /v1/status``: the queue status as JSON (see
``inference_app.status.queries``), or where one request stands (``?request_id=``): a request
of the key asking, or of anyone's for a staff key. Another key's request is not found."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET

from inference_app.status.queries import queue_status, request_status
from project.broker import sync_client
from project.edge.context import request_context
from project.edge.families import OLLAMA, OPENAI, error_response
from project.errors import NotFound


@require_GET
def ollama_status(request: HttpRequest) -> HttpResponseBase:
    return _status(request, OLLAMA)


@require_GET
def openai_status(request: HttpRequest) -> HttpResponseBase:
    return _status(request, OPENAI)


def _status(request: HttpRequest, family: str) -> HttpResponseBase:
    request_id = request.GET.get("request_id")
    if request_id:
        found = _request_status(request, request_id)
        if found is None:
            missing = NotFound(f"request '{request_id}' not found", param="request_id")
            return error_response(family, missing)
        return JsonResponse(found)
    status = queue_status(sync_client())
    return JsonResponse({"object": "status", **status} if family == OPENAI else status)


def _request_status(request: HttpRequest, request_id: str) -> dict[str, Any] | None:
    """Where a request of the asking key stands (``request_id`` as the key sent it or as the
    server answered it); staff may also ask of any request by the id the server gave it."""
    # A plain view (both families share it): who asks comes through the edge's accessor.
    ctx = request_context(request)
    key = ctx.key
    asked = ctx.namespaced(request_id)
    found = request_status(sync_client(), asked)
    if found is None and key is not None and key.user_is_staff and asked != request_id:
        found = request_status(sync_client(), request_id)
    return found
