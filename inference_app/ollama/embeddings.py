"""``POST /api/embed`` (one or many inputs, normalized vectors) and the older
``POST /api/embeddings`` (one prompt, one raw vector)."""

from __future__ import annotations

import time

from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase

from inference_app.dispatch import enqueue_embeddings
from inference_app.ollama.endpoint import ollama_endpoint, read_body
from inference_app.ollama.serializers import (
    EmbeddingsSerializer,
    EmbedSerializer,
    keep_alive_cap,
)
from inference_app.relay import RequestRelay
from inference_app.replies import final_event
from project.edge.context import RequestContext
from project.errors import ValidationFailed
from workers.broker.wire import Embeddings


@ollama_endpoint("POST")
async def embed(request: HttpRequest, ctx: RequestContext) -> HttpResponseBase:
    started = time.perf_counter_ns()
    serializer = EmbedSerializer(data=read_body(request), context=keep_alive_cap(ctx))
    event = await _embed(request, ctx, serializer)
    return JsonResponse(
        {
            "model": serializer.validated_data["model"],
            "embeddings": event.data,
            "total_duration": time.perf_counter_ns() - started,
            "load_duration": event.timings.load_ns,
            "prompt_eval_count": event.usage.prompt_tokens,
        }
    )


@ollama_endpoint("POST")
async def embeddings(request: HttpRequest, ctx: RequestContext) -> HttpResponseBase:
    event = await _embed(
        request, ctx, EmbeddingsSerializer(data=read_body(request), context=keep_alive_cap(ctx))
    )
    return JsonResponse({"embedding": event.data[0]})


async def _embed(
    request: HttpRequest, ctx: RequestContext, serializer: EmbedSerializer | EmbeddingsSerializer
) -> Embeddings:
    """The worker's ``Embeddings`` event for a valid body; raises an ApiError otherwise."""
    if not serializer.is_valid():
        raise ValidationFailed(serializer.errors)
    name = serializer.validated_data["model"]
    _, request_id = await enqueue_embeddings(ctx, name, serializer.to_payload)
    return await final_event(request, RequestRelay(request_id))
