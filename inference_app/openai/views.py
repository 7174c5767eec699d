"""The OpenAI-compatible endpoints under ``/v1``.

Each view validates the body, resolves the model, enqueues one task on the model's lane and
relays the worker's events (``inference_app.replies``).
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase

from inference_app.dispatch import enqueue_embeddings, enqueue_generation
from inference_app.openai.choices import respond_with_choices
from inference_app.openai.endpoint import openai_endpoint
from inference_app.openai.format import ChatFormat, CompletionFormat
from inference_app.openai.serializers import (
    ChatCompletionSerializer,
    CompletionSerializer,
    EmbeddingSerializer,
    SamplingSerializer,
)
from inference_app.relay import RequestRelay
from inference_app.replies import final_event, respond
from models_app.models import ModelRecord, ModelStatus
from models_app.services import ModelNotFound, afind_ready_model
from project.edge.context import RequestContext
from project.edge.endpoint import read_json_body
from project.errors import ApiError, ValidationFailed
from workers.broker.wire import EmbeddingsPayload


@openai_endpoint("GET")
async def list_models(request: HttpRequest, ctx: RequestContext) -> HttpResponseBase:
    records = [r async for r in ModelRecord.objects.filter(status=ModelStatus.READY)]
    visible = [r.to_openai() for r in records if ctx.may_use(r.name)]
    return JsonResponse({"object": "list", "data": visible})


@openai_endpoint("GET")
async def retrieve_model(request: HttpRequest, ctx: RequestContext, name: str) -> HttpResponseBase:
    record = await afind_ready_model(name)
    if not ctx.may_use(record.name):
        raise ModelNotFound(name)  # as OpenAI answers for a model one has no access to
    return JsonResponse(record.to_openai())


@openai_endpoint("POST")
async def chat_completions(request: HttpRequest, ctx: RequestContext) -> HttpResponseBase:
    serializer = ChatCompletionSerializer(data=read_json_body(request))
    if serializer.is_valid() and serializer.choice_count() > 1:
        return await respond_with_choices(request, ctx, serializer, ChatFormat)
    return await _generate(request, ctx, serializer, ChatFormat)


@openai_endpoint("POST")
async def completions(request: HttpRequest, ctx: RequestContext) -> HttpResponseBase:
    serializer = CompletionSerializer(data=read_json_body(request))
    if serializer.is_valid() and serializer.choice_count() > 1:
        return await respond_with_choices(request, ctx, serializer, CompletionFormat)
    return await _generate(request, ctx, serializer, CompletionFormat)


async def _generate(
    request: HttpRequest,
    ctx: RequestContext,
    serializer: ChatCompletionSerializer | CompletionSerializer,
    format_cls: type[ChatFormat] | type[CompletionFormat],
) -> HttpResponseBase:
    if not serializer.is_valid():
        raise ValidationFailed(serializer.errors)
    data = serializer.validated_data
    _, request_id = await enqueue_generation(
        ctx,
        data["model"],
        serializer.payload_for,
        request.headers.get("X-Request-Id"),
    )
    include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
    fmt = format_cls(request_id, data["model"], include_usage)
    return await respond(
        request,
        RequestRelay(request_id),
        fmt,
        stream=bool(data.get("stream")),
        logprobs=bool(data.get("logprobs")),
    )


@openai_endpoint("POST")
async def embeddings(request: HttpRequest, ctx: RequestContext) -> HttpResponseBase:
    serializer = EmbeddingSerializer(data=read_json_body(request))
    if not serializer.is_valid():
        raise ValidationFailed(serializer.errors)
    data = serializer.validated_data

    def build_payload(record: ModelRecord) -> EmbeddingsPayload:
        dimensions = data.get("dimensions")
        if dimensions and dimensions != record.embedding_length:
            raise ApiError(
                f"this model's embeddings have {record.embedding_length} dimensions",
                param="dimensions",
            )
        return serializer.to_payload()

    _, request_id = await enqueue_embeddings(ctx, data["model"], build_payload)
    event = await final_event(request, RequestRelay(request_id))
    return JsonResponse(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": vector}
                for i, vector in enumerate(event.data)
            ],
            "model": data["model"],
            "usage": {
                "prompt_tokens": event.usage.prompt_tokens,
                "total_tokens": event.usage.total_tokens,
            },
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
