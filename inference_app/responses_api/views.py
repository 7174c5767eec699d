"""``/v1/responses``: create a response, and retrieve, list the input items of, or delete a
stored one.

Creating validates the body (``serializer``) with the messages of ``previous_response_id``,
enqueues one generation as chat does and relays its events through
``inference_app.replies`` in the Responses format, so a client that leaves a stream
cancels the generation. A response to keep (``store``, the default) is stored before its last
event or its body leaves, so a client may continue from it at once, through any web process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from inference_app.dispatch import enqueue_generation
from inference_app.openai.bodies import ChatMessageIn
from inference_app.openai.endpoint import openai_endpoint
from inference_app.relay import RequestRelay
from inference_app.replies import respond
from inference_app.responses_api.bodies import ResponseObject
from inference_app.responses_api.format import ResponseObjectFormat
from inference_app.responses_api.models import new_response_id
from inference_app.responses_api.serializer import ResponseSerializer, responses_param
from inference_app.responses_api.storage import (
    DEFAULT_PAGE,
    MAX_PAGE,
    ado_delete_response,
    ado_store_response,
    afind_response,
    input_items_page,
)
from models_app.models import ModelRecord
from project.edge.context import RequestContext
from project.edge.endpoint import read_json_body
from project.errors import ApiError, ValidationFailed
from workers.broker.wire import GenerationPayload

Store = Callable[[ResponseObject], Awaitable[object]]


@openai_endpoint("POST")
async def create_response(request: HttpRequest, ctx: RequestContext) -> HttpResponseBase:
    body = read_json_body(request)
    key = ctx.key
    previous: list[ChatMessageIn] = []
    previous_id = body.get("previous_response_id")
    if isinstance(previous_id, str) and previous_id:
        found = await afind_response(previous_id, key, param="previous_response_id")
        if key is not None and not key.allows(found.model_name):
            # Its messages are the answer of a model the key may not call.
            raise ApiError(
                f"this API key may not use the model '{found.model_name}'",
                status=403,
                code="model_not_allowed",
                error_type="permission_error",
                param="previous_response_id",
            )
        previous = list(found.messages)
    serializer = ResponseSerializer(data=body, context={"previous_messages": previous})
    if not serializer.is_valid():
        raise ValidationFailed(serializer.errors)
    data = serializer.validated_data
    built: list[GenerationPayload] = []

    def build_payload(record: ModelRecord) -> GenerationPayload:
        built.append(serializer.payload_for(record))
        return built[0]

    _, request_id = await enqueue_generation(
        ctx, data["model"], build_payload, request.headers.get("X-Request-Id")
    )
    fmt = ResponseObjectFormat(
        new_response_id(),
        data["model"],
        serializer.echo(built[0]),
        serializer.tool_set.namespaces,
    )
    try:
        response = await respond(request, RequestRelay(request_id), fmt, stream=serializer.streamed)
    except ApiError as exc:
        # The worker names chat's fields (a prompt over the context: ``messages``).
        exc.param = responses_param(exc.param) if exc.param else exc.param
        raise
    if not serializer.stored:
        return response

    async def store(result: ResponseObject) -> object:
        return await ado_store_response(result, data["input"], data["conversation"], key)

    if isinstance(response, StreamingHttpResponse):
        response.streaming_content = _stored_before_the_end(response.streaming_content, fmt, store)
    elif fmt.result is not None:
        await store(fmt.result)
    return response


async def _stored_before_the_end(
    content: Any, fmt: ResponseObjectFormat, store: Store
) -> AsyncIterator[bytes]:
    """The stream, with the response stored as soon as it is finished: before the chunk
    holding its last event goes out."""
    stored = False
    async with aclosing(content):
        async for chunk in content:
            if fmt.result is not None and not stored:
                await store(fmt.result)
                stored = True
            yield chunk


@openai_endpoint("GET", "DELETE")
async def response_detail(
    request: HttpRequest, ctx: RequestContext, response_id: str
) -> HttpResponseBase:
    if request.method == "DELETE":
        await ado_delete_response(response_id, ctx.key)
        return JsonResponse({"id": response_id, "object": "response", "deleted": True})
    stored = await afind_response(response_id, ctx.key)
    return JsonResponse(stored.to_openai())


@openai_endpoint("GET")
async def input_items(
    request: HttpRequest, ctx: RequestContext, response_id: str
) -> HttpResponseBase:
    order = request.GET.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ApiError("order must be 'asc' or 'desc'", param="order")
    try:
        limit = int(request.GET.get("limit", DEFAULT_PAGE))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE:
        raise ApiError(f"limit must be an integer from 1 to {MAX_PAGE}", param="limit")
    stored = await afind_response(response_id, ctx.key)
    page = input_items_page(stored, order=order, limit=limit, after=request.GET.get("after"))
    return JsonResponse(page)
