"""``POST /api/chat`` and ``POST /api/generate``.

Both validate the body, enqueue one generation on the model's lane and relay the worker's
events as NDJSON (the default) or as one object (``"stream": false``). An empty message list or
prompt only loads the model (or, with ``keep_alive: 0``, unloads it).
"""

from __future__ import annotations

import time

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from inference_app.dispatch import enqueue_generation
from inference_app.ollama.endpoint import ollama_endpoint, read_body
from inference_app.ollama.format import OllamaFormat
from inference_app.ollama.serializers import ChatSerializer, GenerateSerializer, keep_alive_cap
from inference_app.relay import RequestRelay
from inference_app.replies import respond
from project.edge.context import RequestContext
from project.errors import ValidationFailed


@ollama_endpoint("POST")
async def chat(request: HttpRequest, ctx: RequestContext) -> HttpResponseBase:
    started = time.perf_counter_ns()
    serializer = ChatSerializer(data=read_body(request), context=keep_alive_cap(ctx))
    return await _generate(request, ctx, serializer, chat=True, started=started)


@ollama_endpoint("POST")
async def generate(request: HttpRequest, ctx: RequestContext) -> HttpResponseBase:
    started = time.perf_counter_ns()
    serializer = GenerateSerializer(data=read_body(request), context=keep_alive_cap(ctx))
    return await _generate(request, ctx, serializer, chat=False, started=started)


async def _generate(
    request: HttpRequest,
    ctx: RequestContext,
    serializer: ChatSerializer | GenerateSerializer,
    *,
    chat: bool,
    started: int,
) -> HttpResponseBase:
    if not serializer.is_valid():
        raise ValidationFailed(serializer.errors)
    data = serializer.validated_data
    _, request_id = await enqueue_generation(ctx, data["model"], serializer.to_payload)
    fmt = OllamaFormat(data["model"], chat=chat, started_ns=started)
    return await respond(
        request,
        RequestRelay(request_id),
        fmt,
        stream=bool(data["stream"]),
        logprobs=bool(data["logprobs"]),
    )
