"""The body of a rerank request: ``model``, ``query``, ``documents`` (strings, or objects with
a ``text``), ``top_n`` and ``return_documents``, as llama-server, Jina and Cohere take it."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from inference_app.input_checks import MAX_C_INT, MAX_MODEL_NAME, StrictCharField, UnicodeBody
from models_app.models import ModelRecord
from project.errors import ApiError
from workers.broker.wire import EmbeddingsPayload

# Documents one request may rank, as the embedding endpoints cap their inputs.
MAX_DOCUMENTS = 2048


class DocumentField(serializers.Field):
    """A document: a non-empty string, or an object whose ``text`` is one (Cohere's and
    Jina's ``{"text": ...}``); its text."""

    def to_internal_value(self, data: Any) -> str:
        text = data.get("text") if isinstance(data, dict) else data
        if not isinstance(text, str):
            raise serializers.ValidationError("must be a string or an object with a 'text'")
        if not text:
            raise serializers.ValidationError("must not be empty")
        return text

    def to_representation(self, value: Any) -> Any:
        return value


class RerankSerializer(UnicodeBody):
    model = StrictCharField(max_length=MAX_MODEL_NAME)
    query = StrictCharField()
    documents = serializers.ListField(
        child=DocumentField(), allow_empty=False, max_length=MAX_DOCUMENTS
    )
    top_n = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_C_INT
    )
    return_documents = serializers.BooleanField(required=False, default=False)
    # Accepted as Cohere's clients send them; Herd cuts a pair to its context anyway.
    max_tokens_per_doc = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    user = StrictCharField(required=False, allow_blank=True)

    def to_payload(self) -> EmbeddingsPayload:
        data = self.validated_data
        return EmbeddingsPayload(input=list(data["documents"]), query=data["query"])


class NotAReranker(ApiError):
    code = "model_not_reranker"


def check_reranker(record: ModelRecord) -> None:
    """Raises NotAReranker (a 400 on ``model``) unless ``record`` is a reranker."""
    if "rerank" not in (record.capabilities or []):
        raise NotAReranker(
            f"model '{record.name}' is not a reranker (its GGUF header has no rank pooling)",
            param="model",
        )
