"""``POST /api/embed`` (one or many inputs, normalized vectors) and the older
``POST /api/embeddings`` (one prompt, one raw vector)."""

from __future__ import annotations

import time
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase

from inference_app.dispatch import enqueue_embeddings
from inference_app.ollama.endpoint import event_error, ollama_endpoint, read_json_body
from inference_app.ollama.serializers import EmbeddingsSerializer, EmbedSerializer
from inference_app.relay import RequestRelay
from models_app.services import ModelNotFound
from project.ollama_errors import from_validation_errors, model_not_found


@ollama_endpoint("POST")
async def embed(request: HttpRequest) -> HttpResponseBase:
    started = time.perf_counter_ns()
    serializer = EmbedSerializer(data=read_json_body(request))
    event = await _embed(serializer)
    timings = event.get("timings", {})
    return JsonResponse(
        {
            "model": serializer.validated_data["model"],
            "embeddings": event["data"],
            "total_duration": time.perf_counter_ns() - started,
            "load_duration": int(timings.get("load_ns", 0)),
            "prompt_eval_count": event["usage"]["prompt_tokens"],
        }
    )


@ollama_endpoint("POST")
async def embeddings(request: HttpRequest) -> HttpResponseBase:
    event = await _embed(EmbeddingsSerializer(data=read_json_body(request)))
    return JsonResponse({"embedding": event["data"][0]})


async def _embed(serializer: EmbedSerializer | EmbeddingsSerializer) -> dict[str, Any]:
    """The worker's ``embeddings`` event for a valid body; raises OllamaError otherwise."""
    if not serializer.is_valid():
        raise from_validation_errors(serializer.errors)
    name = serializer.validated_data["model"]
    try:
        _, request_id = await enqueue_embeddings(name, serializer.to_payload)
    except ModelNotFound:
        raise model_not_found(name) from None
    relay = RequestRelay(request_id)
    try:
        event = await anext(relay.events())
    finally:
        if not relay.finished:
            relay.cancel_now()
    if event["type"] == "error":
        raise event_error(event)
    return event
