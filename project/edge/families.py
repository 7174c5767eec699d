"""How each API family under one server shapes an error, and which family a path belongs to.

OpenAI (``/v1``): ``{"error": {"message", "type", "param", "code"}}``. Ollama (``/api``):
``{"error": "..."}``. A path outside both gets Ollama's plain shape.
"""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

from project.edge.errors import ApiError

OPENAI, OLLAMA = "openai", "ollama"


def family_of(path: str) -> str | None:
    """The API family a request path belongs to, or None for the pages and the admin."""
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
    return {"error": message}


def error_response(family: str, error: ApiError) -> JsonResponse:
    response = JsonResponse(error_body(family, error), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response
