from __future__ import annotations

from django.http import HttpRequest, HttpResponse


def root(request: HttpRequest) -> HttpResponse:
    """Ollama clients probe ``GET /`` (or ``HEAD /``) to see that a server is up; some match
    Ollama's exact words."""
    return HttpResponse("Ollama is running", content_type="text/plain; charset=utf-8")
