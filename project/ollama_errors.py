"""Ollama's error shape: ``{"error": "..."}`` with an HTTP status, for every view under ``/api``.

Raise ``OllamaError`` in a view wrapped by ``inference_app.ollama.endpoint.ollama_endpoint`` (or
call ``.response()`` yourself); the messages follow Ollama's own wording where clients match on
them (``model 'x' not found``).
"""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

from project.validation import first_error


class OllamaError(Exception):
    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.message}

    def response(self) -> JsonResponse:
        return JsonResponse(self.body(), status=self.status)


def model_not_found(name: str) -> OllamaError:
    return OllamaError(f"model '{name}' not found", status=404)


def from_validation_errors(errors: Any) -> OllamaError:
    """The first DRF validation error as one line, named by its field path
    (``options.temperature: ...``)."""
    path, message = first_error(errors)
    return OllamaError(f"{path}: {message}" if path else message, status=400)
