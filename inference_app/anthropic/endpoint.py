"""What every view under ``/v1/messages`` wears: the edge's endpoint decorator, in
Anthropic's shape."""

from __future__ import annotations

from collections.abc import Callable

from project.edge.endpoint import ContextView, View, context_view
from project.edge.families import ANTHROPIC


def anthropic_endpoint(*methods: str) -> Callable[[ContextView], View]:
    """Allow ``methods`` only; errors answer ``{"type": "error", "error": {"type",
    "message"}}``."""
    return context_view(ANTHROPIC, *methods)
