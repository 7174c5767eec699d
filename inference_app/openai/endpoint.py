"""What every view under ``/v1`` wears: the edge's endpoint decorator, in OpenAI's shape."""

from __future__ import annotations

from collections.abc import Callable

from project.edge.endpoint import ContextView, View, context_view
from project.edge.families import OPENAI


def openai_endpoint(*methods: str) -> Callable[[ContextView], View]:
    """Allow ``methods`` only; errors answer ``{"error": {"message", "type", ...}}``."""
    return context_view(OPENAI, *methods)
