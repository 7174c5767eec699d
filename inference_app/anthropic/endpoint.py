"""What every view under ``/v1/messages`` wears: the edge's endpoint decorator, in
Anthropic's shape."""

from __future__ import annotations

from collections.abc import Callable

from project.edge.endpoint import View, api_endpoint
from project.edge.families import ANTHROPIC


def anthropic_endpoint(*methods: str) -> Callable[[View], View]:
    """Allow ``methods`` only; errors answer ``{"type": "error", "error": {"type",
    "message"}}``."""
    return api_endpoint(ANTHROPIC, *methods)
