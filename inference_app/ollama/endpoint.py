"""What every view under ``/api`` wears: the edge's endpoint decorator, in Ollama's
``{"error": "..."}`` shape, and the body reader as Ollama reads bodies (an empty one is
``{}``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest

from project.edge.endpoint import ContextView, View, context_view, read_json_body
from project.edge.families import OLLAMA


def ollama_endpoint(*methods: str) -> Callable[[ContextView], View]:
    """Allow ``methods`` only; errors answer ``{"error": "..."}``."""
    return context_view(OLLAMA, *methods)


def read_body(request: HttpRequest) -> dict[str, Any]:
    return read_json_body(request, empty_is_object=True)
