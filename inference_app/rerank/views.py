"""``POST /v1/rerank``, ``/rerank`` and ``/v2/rerank``: one request to the reranker's worker,
which scores every (query, document) pair in as few decodes as its context allows
(``workers.engine.ranking``); the answer lists the documents best first.

Keys, limits and usage hold as for embeddings (``accounts.middleware``: the three paths are
OpenAI's family, ``project.edge.families``); a model that is not a reranker is a 400.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase

from inference_app.dispatch import enqueue_embeddings
from inference_app.openai.endpoint import openai_endpoint
from inference_app.relay import RequestRelay
from inference_app.replies import final_event
from inference_app.rerank.format import rerank_body
from inference_app.rerank.serializers import RerankSerializer, check_reranker
from models_app.models import ModelRecord
from project.edge.context import RequestContext
from project.edge.endpoint import read_json_body
from project.errors import ValidationFailed
from workers.broker.wire import EmbeddingsPayload


@openai_endpoint("POST")
async def rerank(request: HttpRequest, ctx: RequestContext) -> HttpResponseBase:
    serializer = RerankSerializer(data=read_json_body(request))
    if not serializer.is_valid():
        raise ValidationFailed(serializer.errors)
    data = serializer.validated_data

    def build_payload(record: ModelRecord) -> EmbeddingsPayload:
        check_reranker(record)
        return serializer.to_payload()

    _, request_id = await enqueue_embeddings(ctx, data["model"], build_payload)
    event = await final_event(request, RequestRelay(request_id))
    return JsonResponse(rerank_body(data["model"], event.data, data, event.usage.prompt_tokens))
