"""The Anthropic-compatible endpoints under ``/v1/messages``.

Each view validates the body as Anthropic does, translates it into a chat request
(``translation``), enqueues one task on the model's lane and relays the worker's events
(``inference_app.replies``) in Anthropic's shapes (``format``).
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase

from inference_app.anthropic.endpoint import anthropic_endpoint
from inference_app.anthropic.format import MessageFormat
from inference_app.anthropic.serializers import CountTokensSerializer, MessagesSerializer
from inference_app.anthropic.translation import chat_request, generation_payload
from inference_app.dispatch import enqueue_generation
from inference_app.relay import RequestRelay
from inference_app.replies import only_event, respond
from models_app.models import ModelRecord
from project.edge.context import RequestContext
from project.edge.endpoint import read_json_body
from project.errors import ValidationFailed
from workers.broker.wire import COUNT_TOKENS, Done, GenerationPayload


@anthropic_endpoint("POST")
async def messages(request: HttpRequest, ctx: RequestContext) -> HttpResponseBase:
    data = _validated(MessagesSerializer, request).body
    chat = chat_request(data)
    _, request_id = await enqueue_generation(
        ctx,
        data["model"],
        lambda record: generation_payload(
            chat,
            record.default_options,
            stop_sequences=data.get("stop_sequences"),
            thinking=data.get("thinking"),
        ),
        request.headers.get("X-Request-Id"),
    )
    fmt = MessageFormat(request_id, data["model"])
    return await respond(request, RequestRelay(request_id), fmt, stream=bool(data["stream"]))


@anthropic_endpoint("POST")
async def count_tokens(request: HttpRequest, ctx: RequestContext) -> HttpResponseBase:
    data = _validated(CountTokensSerializer, request).body
    chat = chat_request(data)

    def build_payload(record: ModelRecord) -> GenerationPayload:
        payload = generation_payload(chat, record.default_options)
        # Counted whole: a record that cuts long prompts down would count what it kept.
        return dataclasses.replace(payload, truncate=False, action=COUNT_TOKENS)

    _, request_id = await enqueue_generation(ctx, data["model"], build_payload)
    done = await only_event(RequestRelay(request_id), Done)
    return JsonResponse({"input_tokens": done.usage.prompt_tokens})


Validated = TypeVar("Validated", bound=CountTokensSerializer)


def _validated(serializer_class: type[Validated], request: HttpRequest) -> Validated:
    serializer = serializer_class(data=read_json_body(request))
    if not serializer.is_valid():
        raise ValidationFailed(serializer.errors)
    return serializer
