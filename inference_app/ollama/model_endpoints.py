"""Ollama's model-management endpoints: ``/api/pull``, ``/api/tags``, ``/api/show``,
``/api/copy`` and ``/api/delete`` (``/api/create`` and ``/api/blobs`` are in
``inference_app.ollama.create_endpoints``), in Ollama's shapes and with its
``{"error": "..."}`` body.

Each view reads the body, calls one service from ``models_app.services`` or
``models_app.pulls`` and shapes the answer; the services' errors (``ModelNotFound``,
``PullRefused``, ``InvalidModelName``) are ``ApiError``s the endpoint decorator answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from accounts import audit
from accounts.models import AuditAction
from inference_app.ollama.bodies import ShowBody
from inference_app.ollama.endpoint import ollama_endpoint, read_body
from inference_app.ollama.format import ndjson_stream
from models_app.gguf_metadata import GGUFError, read_gguf_metadata
from models_app.modelfile import render_modelfile
from models_app.models import ModelRecord, ModelStatus
from models_app.names import normalize_model_name
from models_app.parameters import ModelOptions, parameter_lines
from models_app.pull_progress import pull_events
from models_app.pulls import check_pull_reference, do_start_pull
from models_app.services import do_copy_model, do_delete_model, find_ready_model
from project.edge.context import RequestContext
from project.errors import ApiError
from project.json_types import JsonMapping, JsonObject


def model_field(body: JsonObject, *names: str) -> str:
    """The first of ``names`` the body has (Ollama still accepts ``name`` for ``model``)."""
    for name in names:
        value = body.get(name)
        if value is not None:
            if not isinstance(value, str) or not value.strip():
                raise ApiError(f"{name} must be a non-empty string")
            return value
    raise ApiError(f"{names[0]} is required")


@ollama_endpoint("POST")
async def pull(request: HttpRequest, ctx: RequestContext) -> HttpResponseBase:
    body = read_body(request)
    stream = body.get("stream", True)
    if not isinstance(stream, bool):
        raise ApiError("stream must be true or false")
    reference = check_pull_reference(model_field(body, "model", "name"))
    job, joined = await sync_to_async(do_start_pull)(reference)
    if not joined:
        await sync_to_async(_audit)(
            ctx, request, AuditAction.MODEL_PULLED, job.name, {"pull": job.pk}
        )
    headers = {"X-Pull-Id": str(job.pk)}
    if stream:
        return StreamingHttpResponse(
            ndjson_stream(pull_events(job.pk)), content_type="application/x-ndjson", headers=headers
        )
    last: dict[str, Any] = {}
    async for event in pull_events(job.pk):
        last = event
    return JsonResponse(last, status=500 if "error" in last else 200, headers=headers)


@ollama_endpoint("GET")
async def tags(request: HttpRequest, ctx: RequestContext) -> HttpResponseBase:
    records = [r async for r in ModelRecord.objects.filter(status=ModelStatus.READY)]
    return JsonResponse({"models": [r.to_ollama() for r in records if ctx.may_use(r.name)]})


@ollama_endpoint("POST")
async def show(request: HttpRequest, ctx: RequestContext) -> HttpResponseBase:
    body = read_body(request)
    name = model_field(body, "model", "name")
    normalize_model_name(name)  # a malformed name is a 400, not a 404
    record = await sync_to_async(find_ready_model)(name)
    return JsonResponse(_show(record))


def _show(record: ModelRecord) -> ShowBody:
    answer: ShowBody = {
        "license": record.license or str(record.model_info.get("general.license", "") or ""),
        "modelfile": _modelfile(record),
        "parameters": _parameters(record.default_options),
        "template": record.chat_template,
        "details": record.ollama_details(),
        "model_info": record.model_info,
        "capabilities": record.derived_capabilities(),
        "modified_at": record.modified_at.isoformat(),
    }
    if record.projector:
        answer["projector_info"] = _projector_info(record.projector)
    if record.system_prompt:
        answer["system"] = record.system_prompt
    if record.messages:
        answer["messages"] = record.messages
    return answer


def _projector_info(path: str) -> JsonObject:
    """Ollama's ``projector_info``: the vision projector's header keys (empty when its file
    cannot be read here)."""
    try:
        return read_gguf_metadata(Path(path)).model_info()
    except (GGUFError, OSError):
        return {}


def _parameters(options: ModelOptions) -> str:
    """Ollama's ``parameters``: one ``name value`` line per option, a list one line per item."""
    return "\n".join(f"{name:<30} {shown}" for name, shown in parameter_lines(options))


def _modelfile(record: ModelRecord) -> str:
    return render_modelfile(
        record.name,
        record.path,
        template=record.chat_template,
        system=record.system_prompt,
        parameters=record.default_options,
        messages=record.messages,
        license_=record.license,
        aliases=list(record.aliases or []),
        projector=record.projector,
    )


@ollama_endpoint("POST")
async def copy(request: HttpRequest, ctx: RequestContext) -> HttpResponseBase:
    body = read_body(request)
    source, destination = model_field(body, "source"), model_field(body, "destination")
    await sync_to_async(do_copy_model)(source, destination)
    return HttpResponse(status=200)


@ollama_endpoint("DELETE")
async def delete(request: HttpRequest, ctx: RequestContext) -> HttpResponseBase:
    body = read_body(request)
    name = model_field(body, "model", "name")
    normalized = normalize_model_name(name)
    removed = await sync_to_async(do_delete_model)(name)
    await sync_to_async(_audit)(
        ctx, request, AuditAction.MODEL_DELETED, normalized, {"files": [str(p) for p in removed]}
    )
    return HttpResponse(status=200)


def _audit(
    ctx: RequestContext,
    request: HttpRequest,
    action: AuditAction,
    target: str,
    details: JsonMapping,
) -> None:
    audit.record(audit.api_actor(ctx, request), action, target, details)
