"""Ollama's model-management endpoints: ``/api/pull``, ``/api/tags``, ``/api/show``,
``/api/copy`` and ``/api/delete``, in Ollama's shapes and with its ``{"error": "..."}`` body.

Each view reads the body, calls one service from ``models_app.services`` or
``models_app.pulls`` and shapes the answer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Coroutine
from functools import wraps
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from accounts import audit
from accounts.lookup import may_use
from accounts.models import AuditAction
from models_app.models import ModelRecord, ModelStatus
from models_app.names import InvalidModelName, normalize_model_name
from models_app.pull_progress import pull_events
from models_app.pulls import check_pull_reference, do_start_pull
from models_app.references import PullRefused
from models_app.services import (
    ModelNotFound,
    do_copy_model,
    do_delete_model,
    find_ready_model,
)
from project.ollama_errors import OllamaError, model_not_found

View = Callable[..., Coroutine[Any, Any, HttpResponseBase]]


def model_endpoint(*methods: str) -> Callable[[View], View]:
    """Allow ``methods`` only, and answer OllamaError, PullRefused, InvalidModelName and
    ModelNotFound in Ollama's error shape."""

    def decorate(view: View) -> View:
        @csrf_exempt
        @wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in methods:
                return OllamaError(f"method {request.method} not allowed", status=405).response()
            try:
                return await view(request, *args, **kwargs)
            except OllamaError as exc:
                return exc.response()
            except PullRefused as exc:
                return OllamaError(str(exc), status=exc.status).response()
            except InvalidModelName as exc:
                return OllamaError(str(exc), status=400).response()
            except ModelNotFound as exc:
                return model_not_found(exc.name).response()

        return wrapper

    return decorate


def read_body(request: HttpRequest) -> dict[str, Any]:
    try:
        raw = request.body
    except RequestDataTooBig:
        raise OllamaError("request body too large", status=413) from None
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise OllamaError("invalid JSON in the request body") from None
    if not isinstance(body, dict):
        raise OllamaError("the request body must be a JSON object")
    return body


def model_field(body: dict[str, Any], *names: str) -> str:
    """The first of ``names`` the body has (Ollama still accepts ``name`` for ``model``)."""
    for name in names:
        value = body.get(name)
        if value is not None:
            if not isinstance(value, str) or not value.strip():
                raise OllamaError(f"{name} must be a non-empty string")
            return value
    raise OllamaError(f"{names[0]} is required")


def _ndjson(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    async def lines() -> AsyncIterator[bytes]:
        async for event in events:
            yield json.dumps(event).encode() + b"\n"

    return lines()


@model_endpoint("POST")
async def pull(request: HttpRequest) -> HttpResponseBase:
    body = read_body(request)
    stream = body.get("stream", True)
    if not isinstance(stream, bool):
        raise OllamaError("stream must be true or false")
    reference = check_pull_reference(model_field(body, "model", "name"))
    job, joined = await sync_to_async(do_start_pull)(reference)
    if not joined:
        await sync_to_async(_audit)(request, AuditAction.MODEL_PULLED, job.name, {"pull": job.pk})
    headers = {"X-Pull-Id": str(job.pk)}
    if stream:
        return StreamingHttpResponse(
            _ndjson(pull_events(job.pk)), content_type="application/x-ndjson", headers=headers
        )
    last: dict[str, Any] = {}
    async for event in pull_events(job.pk):
        last = event
    return JsonResponse(last, status=500 if "error" in last else 200, headers=headers)


@model_endpoint("GET")
async def tags(request: HttpRequest) -> HttpResponseBase:
    records = [r async for r in ModelRecord.objects.filter(status=ModelStatus.READY)]
    return JsonResponse({"models": [r.to_ollama() for r in records if may_use(request, r.name)]})


@model_endpoint("POST")
async def show(request: HttpRequest) -> HttpResponseBase:
    body = read_body(request)
    name = model_field(body, "model", "name")
    normalize_model_name(name)  # a malformed name is a 400, not a 404
    record = await sync_to_async(find_ready_model)(name)
    return JsonResponse(_show(record))


def _show(record: ModelRecord) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "license": str(record.model_info.get("general.license", "") or ""),
        "modelfile": _modelfile(record),
        "parameters": _parameters(record.default_options),
        "template": record.chat_template,
        "details": record.ollama_details(),
        "model_info": record.model_info,
        "capabilities": record.capabilities,
        "modified_at": record.modified_at.isoformat(),
    }
    if record.system_prompt:
        answer["system"] = record.system_prompt
    return answer


def _parameters(options: dict[str, Any]) -> str:
    """Ollama's ``parameters``: one ``name value`` line per option, a list one line per item."""
    lines = []
    for name, value in sorted(options.items()):
        for item in value if isinstance(value, list) else [value]:
            shown = json.dumps(item) if isinstance(item, str) else str(item).lower()
            lines.append(f"{name:<30} {shown}")
    return "\n".join(lines)


def _modelfile(record: ModelRecord) -> str:
    lines = [
        '# Modelfile generated by "herd show"',
        "# To build a new Modelfile based on this, replace FROM with:",
        f"# FROM {record.name}",
        "",
        f"FROM {record.path}",
    ]
    if record.chat_template:
        lines.append(f'TEMPLATE """{record.chat_template}"""')
    if record.system_prompt:
        lines.append(f'SYSTEM """{record.system_prompt}"""')
    for line in _parameters(record.default_options).splitlines():
        lines.append(f"PARAMETER {' '.join(line.split(maxsplit=1))}")
    return "\n".join(lines) + "\n"


@model_endpoint("POST")
async def copy(request: HttpRequest) -> HttpResponseBase:
    body = read_body(request)
    source, destination = model_field(body, "source"), model_field(body, "destination")
    await sync_to_async(do_copy_model)(source, destination)
    return HttpResponse(status=200)


@model_endpoint("DELETE")
async def delete(request: HttpRequest) -> HttpResponseBase:
    body = read_body(request)
    name = model_field(body, "model", "name")
    normalized = normalize_model_name(name)
    removed = await sync_to_async(do_delete_model)(name)
    await sync_to_async(_audit)(
        request, AuditAction.MODEL_DELETED, normalized, {"files": [str(p) for p in removed]}
    )
    return HttpResponse(status=200)


def _audit(request: HttpRequest, action: AuditAction, target: str, details: dict[str, Any]) -> None:
    audit.record(audit.api_actor(request), action, target, details)
