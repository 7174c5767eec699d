"""``GET /api/status`` and ``GET /v1/status``: the queue status as JSON (see
``inference_app.status.queries``)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from inference_app.status.queries import queue_status, request_status
from project.broker import sync_client


@require_GET
def ollama_status(request: HttpRequest) -> JsonResponse:
    request_id = request.GET.get("request_id")
    if request_id:
        found = request_status(sync_client(), request_id)
        if found is None:
            return JsonResponse({"error": f"request '{request_id}' not found"}, status=404)
        return JsonResponse(found)
    return JsonResponse(queue_status(sync_client()))


@require_GET
def openai_status(request: HttpRequest) -> JsonResponse:
    request_id = request.GET.get("request_id")
    if request_id:
        found = request_status(sync_client(), request_id)
        if found is None:
            return JsonResponse(
                {
                    "error": {
                        "message": f"request '{request_id}' not found",
                        "type": "invalid_request_error",
                        "param": "request_id",
                        "code": "not_found",
                    }
                },
                status=404,
            )
        return JsonResponse(found)
    return JsonResponse({"object": "status", **queue_status(sync_client())})
