"""``GET /api/ps`` (the models workers hold right now) and ``GET /api/version``."""

from __future__ import annotations

from datetime import UTC, datetime

from asgiref.sync import sync_to_async
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase

from inference_app.ollama.endpoint import ollama_endpoint
from models_app.bodies import OllamaDetails
from models_app.models import ModelRecord
from project.broker import sync_client
from project.edge.context import RequestContext
from project.versions import OLLAMA_VERSION, herd_version
from workers.broker.registry import live_workers

# What /api/ps shows for a model kept forever (negative keep_alive): Ollama shows a date
# centuries ahead too.
FOREVER = "2318-01-01T00:00:00Z"


def ollama_details(record: ModelRecord | None) -> OllamaDetails:
    if record is None:
        return {"parent_model": "", "format": "gguf", "family": "", "families": None}
    return record.ollama_details()


def _expires_at(epoch: float | None) -> str:
    if epoch is None:
        return FOREVER
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@ollama_endpoint("GET")
async def ps(request: HttpRequest, ctx: RequestContext) -> HttpResponseBase:
    """From the live workers' registry entries, so it shows what is really loaded (a model
    held by two workers shows twice, once per copy)."""
    workers = await sync_to_async(live_workers)(sync_client())
    held = [
        {**model, "worker": worker.get("name", "")}
        for worker in workers
        for model in worker.get("models", [])
    ]
    names = {m["name"] for m in held}
    records = {r.name: r async for r in ModelRecord.objects.filter(name__in=names)}
    models = [
        {
            "name": m["name"],
            "model": m["name"],
            "size": m["size"],
            "digest": m["digest"],
            "details": ollama_details(records.get(m["name"])),
            "expires_at": _expires_at(m["expires_at"]),
            "size_vram": m["size_vram"],
            "context_length": m["context_length"],
            # Herd's own: which worker holds this copy.
            "worker": m["worker"],
        }
        for m in sorted(held, key=lambda m: (m["name"], m["worker"]))
    ]
    return JsonResponse({"models": models})


@ollama_endpoint("GET")
async def api_version(request: HttpRequest, ctx: RequestContext) -> HttpResponseBase:
    """The Ollama version whose API ``/api`` answers as: clients gate features on it (Codex's
    ``--oss`` refuses an Ollama older than 0.13.4). Herd's own version is in a header."""
    return JsonResponse({"version": OLLAMA_VERSION}, headers={"X-Herd-Version": herd_version()})
