"""The OpenAI-compatible endpoints under ``/v1``.

Each view validates the body, resolves the model, enqueues one task on the model's lane and
relays the worker's events. The response status is chosen from the first event, so errors the
worker finds before generating (a prompt over the context) still get their proper status.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Coroutine
from functools import wraps
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from accounts.lookup import may_use
from inference_app.dispatch import Unavailable, enqueue_embeddings, enqueue_generation
from inference_app.openai.errors import OpenAIError, from_validation_errors, model_not_found
from inference_app.openai.responses import ChatFormat, CompletionFormat, sse
from inference_app.openai.serializers import (
    ChatCompletionSerializer,
    CompletionSerializer,
    EmbeddingSerializer,
    SamplingSerializer,
)
from inference_app.relay import RequestRelay
from models_app.models import ModelRecord, ModelStatus
from models_app.services import ModelNotFound, afind_ready_model

View = Callable[..., Coroutine[Any, Any, HttpResponseBase]]


def openai_endpoint(*methods: str) -> Callable[[View], View]:
    """Allow ``methods`` only and turn OpenAIError into OpenAI's error body."""

    def decorate(view: View) -> View:
        @csrf_exempt
        @wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in methods:
                return OpenAIError(
                    f"method {request.method} not allowed", status=405, code="method_not_allowed"
                ).response()
            try:
                return await view(request, *args, **kwargs)
            except OpenAIError as exc:
                return exc.response()
            except Unavailable as exc:
                return OpenAIError(
                    str(exc),
                    status=503,
                    type_="server_error",
                    code=exc.code,
                    headers={"Retry-After": str(exc.retry_after)},
                ).response()

        return wrapper

    return decorate


def read_json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        raw = request.body
    except RequestDataTooBig:
        raise OpenAIError("request body too large", status=413, code="request_too_large") from None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise OpenAIError("the request body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise OpenAIError("the request body must be a JSON object", code="invalid_json")
    return body


def event_error(event: dict[str, Any]) -> OpenAIError:
    return OpenAIError(
        event["message"],
        status=event.get("status", 500),
        type_=event.get("error_type", "server_error"),
        param=event.get("param"),
        code=event.get("code"),
    )


async def resolve_model(name: str) -> ModelRecord:
    try:
        return await afind_ready_model(name)
    except ModelNotFound:
        raise model_not_found(name) from None


@openai_endpoint("GET")
async def list_models(request: HttpRequest) -> HttpResponseBase:
    records = [r async for r in ModelRecord.objects.filter(status=ModelStatus.READY)]
    visible = [r.to_openai() for r in records if may_use(request, r.name)]
    return JsonResponse({"object": "list", "data": visible})


@openai_endpoint("GET")
async def retrieve_model(request: HttpRequest, name: str) -> HttpResponseBase:
    record = await resolve_model(name)
    if not may_use(request, record.name):
        raise model_not_found(name)  # as OpenAI answers for a model one has no access to
    return JsonResponse(record.to_openai())


@openai_endpoint("POST")
async def chat_completions(request: HttpRequest) -> HttpResponseBase:
    serializer = ChatCompletionSerializer(data=read_json_body(request))
    return await _generate(request, serializer, ChatFormat)


@openai_endpoint("POST")
async def completions(request: HttpRequest) -> HttpResponseBase:
    serializer = CompletionSerializer(data=read_json_body(request))
    return await _generate(request, serializer, CompletionFormat)


async def _generate(
    request: HttpRequest,
    serializer: ChatCompletionSerializer | CompletionSerializer,
    format_cls: type[ChatFormat] | type[CompletionFormat],
) -> HttpResponseBase:
    if not serializer.is_valid():
        raise from_validation_errors(serializer.errors)
    data = serializer.validated_data
    try:
        _, request_id = await enqueue_generation(
            data["model"],
            lambda record: serializer.to_payload(record.default_options),
            request.headers.get("X-Request-Id"),
        )
    except ModelNotFound:
        raise model_not_found(data["model"]) from None
    relay = RequestRelay(request_id)
    events = relay.events()
    include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
    fmt = format_cls(request_id, data["model"], include_usage)
    try:
        first = await anext(events)
        if first["type"] == "error":
            raise event_error(first)
        if data.get("stream"):
            response = StreamingHttpResponse(
                _stream(relay, events, first, fmt), content_type="text/event-stream"
            )
            response["Cache-Control"] = "no-cache"
            response["X-Request-Id"] = request_id
            return response
        text = []
        logprobs: list[dict[str, Any]] | None = [] if data.get("logprobs") else None
        event = first
        while event["type"] == "delta":
            text.append(event["text"])
            if logprobs is not None:
                logprobs.extend(event.get("logprobs", []))
            event = await anext(events)
        if event["type"] == "error":
            raise event_error(event)
        body = fmt.whole("".join(text), event, logprobs)
        return JsonResponse(body, headers={"X-Request-Id": request_id})
    finally:
        if not relay.finished and not data.get("stream"):
            relay.cancel_now()


async def _stream(
    relay: RequestRelay,
    events: AsyncIterator[dict[str, Any]],
    first: dict[str, Any],
    fmt: ChatFormat | CompletionFormat,
) -> AsyncIterator[bytes]:
    """SSE for one request. When the client goes away, Django stops this iterator and the
    ``finally`` raises the cancel flag, so the engine stops within a token."""
    try:
        opening = fmt.opening_chunk()
        event = first
        while True:
            if event["type"] == "delta":
                yield opening + fmt.delta_chunk(event["text"], event.get("logprobs"))
                opening = b""
            elif event["type"] == "done":
                yield opening + fmt.closing_chunks(event)
                return
            else:
                yield sse(event_error(event).body())
                return
            event = await anext(events)
    finally:
        if not relay.finished:
            relay.cancel_now()


@openai_endpoint("POST")
async def embeddings(request: HttpRequest) -> HttpResponseBase:
    serializer = EmbeddingSerializer(data=read_json_body(request))
    if not serializer.is_valid():
        raise from_validation_errors(serializer.errors)
    data = serializer.validated_data

    def build_payload(record: ModelRecord) -> dict[str, Any]:
        dimensions = data.get("dimensions")
        if dimensions and dimensions != record.embedding_length:
            raise OpenAIError(
                f"this model's embeddings have {record.embedding_length} dimensions",
                param="dimensions",
                code="invalid_value",
            )
        return serializer.to_payload()

    try:
        _, request_id = await enqueue_embeddings(data["model"], build_payload)
    except ModelNotFound:
        raise model_not_found(data["model"]) from None
    relay = RequestRelay(request_id)
    try:
        event = await anext(relay.events())
    finally:
        if not relay.finished:
            relay.cancel_now()
    if event["type"] == "error":
        raise event_error(event)
    return JsonResponse(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": vector}
                for i, vector in enumerate(event["data"])
            ],
            "model": data["model"],
            "usage": event["usage"],
        }
    )


__all__ = [
    "SamplingSerializer",
    "chat_completions",
    "completions",
    "embeddings",
    "list_models",
    "retrieve_model",
]
