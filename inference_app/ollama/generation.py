"""``POST /api/chat`` and ``POST /api/generate``.

Both validate the body, enqueue one generation on the model's lane and relay the worker's
events as NDJSON (the default) or as one object (``"stream": false``). An empty message list or
prompt only loads the model (or, with ``keep_alive: 0``, unloads it).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from inference_app.dispatch import enqueue_generation
from inference_app.ollama.endpoint import event_error, ollama_endpoint, read_json_body
from inference_app.ollama.ndjson import OllamaFormat, ndjson
from inference_app.ollama.serializers import ChatSerializer, GenerateSerializer
from inference_app.relay import RequestRelay
from models_app.services import ModelNotFound
from project.ollama_errors import from_validation_errors, model_not_found


@ollama_endpoint("POST")
async def chat(request: HttpRequest) -> HttpResponseBase:
    started = time.perf_counter_ns()
    return await _generate(ChatSerializer(data=read_json_body(request)), chat=True, started=started)


@ollama_endpoint("POST")
async def generate(request: HttpRequest) -> HttpResponseBase:
    started = time.perf_counter_ns()
    serializer = GenerateSerializer(data=read_json_body(request))
    return await _generate(serializer, chat=False, started=started)


async def _generate(
    serializer: ChatSerializer | GenerateSerializer, *, chat: bool, started: int
) -> HttpResponseBase:
    if not serializer.is_valid():
        raise from_validation_errors(serializer.errors)
    data = serializer.validated_data
    try:
        _, request_id = await enqueue_generation(data["model"], serializer.to_payload)
    except ModelNotFound:
        raise model_not_found(data["model"]) from None
    relay = RequestRelay(request_id)
    events = relay.events()
    fmt = OllamaFormat(data["model"], chat=chat, started_ns=started)
    try:
        first = await anext(events)
        if first["type"] == "error":
            raise event_error(first)
        if data["stream"]:
            response = StreamingHttpResponse(
                _stream(relay, events, first, fmt), content_type="application/x-ndjson"
            )
            response["X-Request-Id"] = request_id
            return response
        text: list[str] = []
        logprobs: list[dict[str, Any]] | None = [] if data["logprobs"] else None
        event = first
        while event["type"] == "delta":
            text.append(event["text"])
            if logprobs is not None:
                logprobs.extend(event.get("logprobs", []))
            event = await anext(events)
        if event["type"] == "error":
            raise event_error(event)
        body = fmt.final(
            event, time.perf_counter_ns(), "".join(text), logprobs, with_tool_calls=True
        )
        return JsonResponse(body, headers={"X-Request-Id": request_id})
    finally:
        if not relay.finished and not data["stream"]:
            relay.cancel_now()


async def _stream(
    relay: RequestRelay,
    events: AsyncIterator[dict[str, Any]],
    first: dict[str, Any],
    fmt: OllamaFormat,
) -> AsyncIterator[bytes]:
    """NDJSON for one request; a client that leaves cancels the generation (the ``finally``)."""
    try:
        event = first
        while True:
            if event["type"] == "delta":
                yield ndjson(fmt.chunk(event["text"], event.get("logprobs")))
            elif event["type"] == "done":
                calls = event.get("tool_calls")
                out = ndjson(fmt.chunk("", tool_calls=calls)) if calls else b""
                yield out + ndjson(fmt.final(event, time.perf_counter_ns()))
                return
            else:
                yield ndjson(event_error(event).body())
                return
            event = await anext(events)
    finally:
        if not relay.finished:
            relay.cancel_now()
