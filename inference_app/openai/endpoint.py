"""What every view under ``/v1`` wears: the edge's endpoint decorator, in OpenAI's shape."""

from __future__ import annotations

from collections.abc import Callable

from project.edge.endpoint import View, api_endpoint
from project.edge.families import OPENAI


def openai_endpoint(*methods: str) -> Callable[[View], View]:
    """Allow ``methods`` only; errors answer ``{"error": {"message", "type", ...}}``."""
    return api_endpoint(OPENAI, *methods)
