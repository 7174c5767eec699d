"""The playground: a page and a script. The script calls the server's own
``/v1/chat/completions`` with ``stream: true``, as any OpenAI client would."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from models_app.models import ModelRecord, ModelStatus


@login_required
@require_GET
def playground(request: HttpRequest) -> HttpResponse:
    models = ModelRecord.objects.filter(status=ModelStatus.READY)
    context = {
        "nav": "playground",
        "models": models,
        "chosen": request.GET.get("model", ""),
        "auth_required": settings.HERD_AUTH_REQUIRED,
    }
    return render(request, "playground/playground.html", context)
