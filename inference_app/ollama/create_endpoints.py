"""Ollama's ``POST /api/create`` and ``HEAD``/``POST /api/blobs/sha256:<digest>``, in Ollama's
shapes: NDJSON status objects ending in ``success`` (or one object with ``"stream": false``),
and ``{"error": "..."}`` with the right status when the request cannot be served.

Everything a request can get wrong is checked before the answer starts, so errors come with
their status (400, 404, 409, 507) rather than inside a 200 stream; what can fail later (a
quantization on a worker) ends the stream with an ``{"error": ...}`` object, as Ollama's does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from accounts import audit
from accounts.models import AuditAction
from inference_app.ollama.endpoint import ollama_endpoint, read_body
from inference_app.ollama.format import ndjson_stream
from models_app.blob_receiver import BLOB_RECEIPT, BlobReceipt
from models_app.blobs import BlobRefused, BlobWriter, blob_exists, parse_digest
from models_app.create import CreatePlan, check_create, do_create
from models_app.pull_progress import quantize_events
from project.edge.context import RequestContext
from project.errors import ApiError
from project.json_types import JsonData

_READ_BLOCK = 1 << 20


@ollama_endpoint("POST")
async def create(request: HttpRequest, ctx: RequestContext) -> HttpResponseBase:
    body = read_body(request)
    stream = body.get("stream", True)
    if not isinstance(stream, bool):
        raise ApiError("stream must be true or false")
    plan = await sync_to_async(check_create)(body)
    _record, job = await sync_to_async(do_create)(plan)
    await sync_to_async(_audit_create)(ctx, request, plan, job.pk if job else None)
    events = _create_events(plan, job.pk if job else None)
    headers = {"X-Quantize-Id": str(job.pk)} if job else {}
    if stream:
        return StreamingHttpResponse(
            ndjson_stream(events), content_type="application/x-ndjson", headers=headers
        )
    last: dict[str, Any] = {}
    async for event in events:
        last = event
    return JsonResponse(last, status=500 if "error" in last else 200, headers=headers)


async def _create_events(plan: CreatePlan, job_id: int | None) -> AsyncIterator[dict[str, Any]]:
    for layer in plan.layers:
        yield {"status": layer}
    if job_id is None:
        yield {"status": "writing manifest"}
        yield {"status": "success"}
        return
    async for event in quantize_events(job_id):
        yield event


def _audit_create(
    ctx: RequestContext, request: HttpRequest, plan: CreatePlan, job_id: int | None
) -> None:
    details: dict[str, JsonData] = {
        "from": plan.base.name if plan.base else None,
        "files": {plan.blob[0]: f"sha256:{plan.blob[1]}"} if plan.blob else None,
        "set": sorted(k for k in plan.settings if k != "parent_model"),
    }
    if plan.quantize:
        details.update({"quantize": plan.quantize, "job": job_id})
    action = AuditAction.MODEL_QUANTIZED if plan.quantize else AuditAction.MODEL_CREATED
    audit.record(audit.api_actor(ctx, request), action, plan.name, details)


@ollama_endpoint("HEAD", "POST")
async def blob(request: HttpRequest, ctx: RequestContext, digest: str) -> HttpResponseBase:
    sha256 = parse_digest(digest)
    if request.method == "HEAD":
        return HttpResponse(status=200 if await asyncio.to_thread(blob_exists, sha256) else 404)
    receipt = request.scope.get(BLOB_RECEIPT) if hasattr(request, "scope") else None
    if receipt is None:
        # Not through HerdASGIHandler (a test client, another server): the body is Django's.
        receipt = await asyncio.to_thread(_store_from_request, request, sha256)
    assert isinstance(receipt, BlobReceipt)
    if receipt.error is not None:
        raise receipt.error
    if receipt.existed:
        return HttpResponse(status=200)
    assert receipt.path is not None
    size = receipt.path.stat().st_size
    await sync_to_async(_audit_blob)(ctx, request, sha256, size)
    return HttpResponse(status=201)


def _audit_blob(ctx: RequestContext, request: HttpRequest, sha256: str, size: int) -> None:
    actor = audit.api_actor(ctx, request)
    audit.record(actor, AuditAction.BLOB_UPLOADED, f"sha256:{sha256}", {"size": size})


def _store_from_request(request: HttpRequest, sha256: str) -> BlobReceipt:
    if blob_exists(sha256):
        return BlobReceipt(existed=True)
    declared = request.META.get("CONTENT_LENGTH")
    try:
        writer = BlobWriter(sha256, int(declared) if declared and declared.isdigit() else None)
        try:
            for block in iter(lambda: request.read(_READ_BLOCK), b""):
                writer.write(block)
        except BaseException:
            writer.abort()
            raise
        return BlobReceipt(path=writer.finish())
    except BlobRefused as exc:
        return BlobReceipt(error=exc)
