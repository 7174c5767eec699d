"""Check a batch input file line by line, before anything runs.

Each line must be a JSON object with a unique ``custom_id``, ``method`` POST, ``url`` equal to
the batch's endpoint, and a ``body`` the endpoint accepts (the same serializers as the live
API) naming a ready model that the batch's key may use. Errors carry 1-based line numbers, as
OpenAI reports them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rest_framework import serializers

from inference_app.openai.serializers import (
    ChatCompletionSerializer,
    CompletionSerializer,
    EmbeddingSerializer,
)
from inference_app.rerank.serializers import RerankSerializer
from inference_app.responses_api.serializer import ResponseSerializer
from models_app.models import ModelRecord, ModelStatus
from models_app.names import InvalidModelName, normalize_model_name
from project.errors import ValidationFailed

ENDPOINT_SERIALIZERS: dict[str, type[serializers.Serializer]] = {
    "/v1/chat/completions": ChatCompletionSerializer,
    "/v1/completions": CompletionSerializer,
    "/v1/embeddings": EmbeddingSerializer,
    # Batch responses are not stored, so a line cannot name a previous_response_id.
    "/v1/responses": ResponseSerializer,
    "/v1/rerank": RerankSerializer,
}
# Endpoints whose lines must name a model with this capability (``models_app.capabilities``).
ENDPOINT_CAPABILITIES = {"/v1/rerank": "rerank"}


@dataclass(frozen=True)
class ParsedLine:
    line_number: int
    custom_id: str
    model_name: str
    body: dict[str, Any]


def _error(line: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": line}


def check_batch_input(
    content: bytes, endpoint: str, may_use: Callable[[str], bool] = lambda model: True
) -> tuple[list[ParsedLine], list[dict[str, Any]]]:
    """Parse ``content``; returns the lines and the errors (no lines run if any error).
    ``may_use`` says whether the key that creates the batch may call a model (normalized
    ``name:tag``): a line naming another is an error, as it would be a 403 on its own."""
    serializer_cls = ENDPOINT_SERIALIZERS[endpoint]
    ready_records = ModelRecord.objects.filter(status=ModelStatus.READY)
    capabilities = dict(ready_records.values_list("name", "capabilities"))
    ready = set(capabilities)
    needed = ENDPOINT_CAPABILITIES.get(endpoint)
    lines: list[ParsedLine] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return [], [_error(1, "invalid_file", "the file is not UTF-8 text")]
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except ValueError:
            errors.append(_error(number, "invalid_json_line", "this line is not valid JSON"))
            continue
        if not isinstance(item, dict):
            errors.append(_error(number, "invalid_json_line", "each line must be a JSON object"))
            continue
        custom_id = item.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            errors.append(
                _error(number, "missing_required_parameter", "custom_id is required", "custom_id")
            )
            continue
        if custom_id in seen:
            errors.append(
                _error(
                    number,
                    "duplicate_custom_id",
                    f"custom_id {custom_id!r} appears more than once",
                    "custom_id",
                )
            )
            continue
        seen.add(custom_id)
        if item.get("method") != "POST":
            errors.append(_error(number, "invalid_method", "method must be POST", "method"))
            continue
        if item.get("url") != endpoint:
            errors.append(
                _error(
                    number,
                    "mismatched_endpoint",
                    f"url must be the batch's endpoint {endpoint}",
                    "url",
                )
            )
            continue
        body = item.get("body")
        if not isinstance(body, dict):
            errors.append(_error(number, "invalid_request", "body must be a JSON object", "body"))
            continue
        serializer = serializer_cls(data=body)
        if not serializer.is_valid():
            problem = ValidationFailed(serializer.errors)
            errors.append(
                _error(
                    number,
                    "invalid_request",
                    problem.message,
                    f"body.{problem.param}" if problem.param else "body",
                )
            )
            continue
        if body.get("stream"):
            errors.append(
                _error(number, "invalid_request", "stream is not allowed in a batch", "body.stream")
            )
            continue
        choices = getattr(serializer, "choice_count", lambda: 1)()
        if choices > 1:
            # A line's row holds one result: one generation per line.
            errors.append(
                _error(
                    number,
                    "invalid_request",
                    f"a batch line asks for one choice; this one asks for {choices} "
                    "(n, or a list of prompts): split it into lines",
                    "body.n",
                )
            )
            continue
        try:
            model_name = normalize_model_name(body["model"])
        except InvalidModelName:
            model_name = ""
        if model_name not in ready:
            errors.append(
                _error(
                    number,
                    "model_not_found",
                    f"The model '{body['model']}' does not exist",
                    "body.model",
                )
            )
            continue
        if needed and needed not in (capabilities[model_name] or []):
            errors.append(
                _error(
                    number,
                    "invalid_value",
                    f"model '{body['model']}' cannot serve {endpoint} (it has no '{needed}')",
                    "body.model",
                )
            )
            continue
        if not may_use(model_name):
            errors.append(
                _error(
                    number,
                    "model_not_allowed",
                    f"this API key may not use the model '{body['model']}'",
                    "body.model",
                )
            )
            continue
        lines.append(ParsedLine(number, custom_id, model_name, body))
    if not lines and not errors:
        errors.append(_error(1, "empty_file", "the input file has no requests"))
    return lines, errors
