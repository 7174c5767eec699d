"""How each API family under one server shapes an error, and which family a path belongs to.

OpenAI (``/v1``): ``{"error": {"message", "type", "param", "code"}}``. Anthropic
(``/v1/messages``, inside OpenAI's ``/v1``): ``{"type": "error", "error": {"type", "message"}}``,
its ``type`` named by the status as Anthropic names it (``ANTHROPIC_TYPES``). Ollama (``/api``):
``{"error": "..."}``. A path outside all of them gets Ollama's plain shape.
"""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

from project.errors import ApiError

OPENAI, OLLAMA, ANTHROPIC = "openai", "ollama", "anthropic"
FAMILIES = (OPENAI, OLLAMA, ANTHROPIC)

# Anthropic's error types by status. Herd's 503 (no worker, or its lane full: come back after
# Retry-After) keeps its status, for the Retry-After every family's clients honour, and is
# ``overloaded_error``: Anthropic's word for capacity that is short for now (its own 529).
ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


# Rerank paths outside /v1, as Jina's and Cohere's clients (and vLLM) call them: OpenAI's
# family all the same, so keys, limits and error shapes hold there as under /v1.
RERANK_ALIASES = ("/rerank", "/v2/rerank")


def family_of(path: str) -> str | None:
    """The API family a request path belongs to, or None for the pages and the admin."""
    if path in RERANK_ALIASES:
        return OPENAI
    if path.startswith("/v1/messages/") or path == "/v1/messages":
        return ANTHROPIC
    if path.startswith("/v1/") or path == "/v1":
        return OPENAI
    if path.startswith("/api/") or path == "/api":
        return OLLAMA
    return None


def error_body(family: str, error: ApiError) -> dict[str, Any]:
    message = error.message_for(family)
    if family == OPENAI:
        return {
            "error": {
                "message": message,
                "type": error.error_type,
                "param": error.param,
                "code": error.code,
            }
        }
    if family == ANTHROPIC:
        kind = anthropic_type(error.status)
        return {"type": "error", "error": {"type": kind, "message": message}}
    return {"error": message}


def anthropic_type(status: int) -> str:
    """The ``error.type`` Anthropic gives a status: its own statuses by name, any other
    client error as an invalid request, any other server error as an API error."""
    if status in ANTHROPIC_TYPES:
        return ANTHROPIC_TYPES[status]
    return "invalid_request_error" if status < 500 else "api_error"


def error_response(family: str, error: ApiError) -> JsonResponse:
    response = JsonResponse(error_body(family, error), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response
