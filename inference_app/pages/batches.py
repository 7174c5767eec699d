"""The batches pages: upload a file of requests, follow a batch, download its results.

Batches go through ``inference_app.batches.services`` and ``StoredFile``, exactly as
``/v1/files`` and ``/v1/batches`` do.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from inference_app.batches.files import FilePurpose, StoredFile
from inference_app.batches.models import TERMINAL, BatchJob
from inference_app.batches.services import BatchRequestError, do_cancel_batch, do_create_batch
from inference_app.batches.validation import ENDPOINT_SERIALIZERS
from project.pages.access import is_htmx, staff_required

RECENT_BATCHES = 50


def batch_view(batch: BatchJob) -> dict[str, Any]:
    """A batch as the page shows it: its ``request_counts`` (the API's), the share of lines
    done, and whether it still runs (and so its row still polls)."""
    counts = batch.request_counts()
    done = counts["completed"] + counts["failed"]
    return {
        "batch": batch,
        "counts": counts,
        "done": done,
        "percent": done * 100 // counts["total"] if counts["total"] else 0,
        "active": batch.status not in TERMINAL,
        "input_name": batch.input_file.filename,
    }


@login_required
@require_http_methods(["GET", "POST"])
def batches_page(request: HttpRequest) -> HttpResponse:
    """GET lists recent batches; POST uploads a JSONL file and creates a batch of it, as
    ``POST /v1/files`` then ``POST /v1/batches`` do."""
    if request.method == "POST":
        error = _create_batch(request)
        if error is None:
            return redirect("/ui/batches/")
        messages.error(request, error)
    batches = BatchJob.objects.select_related("input_file")[:RECENT_BATCHES]
    context = {
        "nav": "batches",
        "batches": [batch_view(b) for b in batches],
        "endpoints": list(ENDPOINT_SERIALIZERS),
        "chosen_endpoint": request.POST.get("endpoint", "/v1/chat/completions"),
        "max_upload": settings.HERD_MAX_UPLOAD,
    }
    return render(request, "batches/batches.html", context)


def _create_batch(request: HttpRequest) -> str | None:
    """The batch from the form; an error message when there is none."""
    upload = request.FILES.get("file")
    if upload is None:
        return "Choose a JSONL file to upload."
    if upload.size is not None and upload.size > settings.HERD_MAX_UPLOAD:
        return f"Files are limited to {settings.HERD_MAX_UPLOAD} bytes."
    endpoint = request.POST.get("endpoint", "")
    window = request.POST.get("completion_window", "").strip() or "24h"
    stored = StoredFile.create(FilePurpose.BATCH, upload.name or "upload.jsonl", upload.read())
    try:
        batch = do_create_batch(stored.pk, endpoint, window, None)
    except BatchRequestError as exc:
        stored.delete_with_content()
        return str(exc)
    if batch.errors:
        messages.error(request, f"{batch.pk} failed validation: see its page.")
    else:
        messages.success(request, f"Created {batch.pk}.")
    return None


@login_required
@require_GET
def batch_detail(request: HttpRequest, batch_id: str) -> HttpResponse:
    batch = get_object_or_404(BatchJob.objects.select_related("input_file"), pk=batch_id)
    context = {"nav": "batches", "b": batch_view(batch)}
    template = "batches/_progress.html" if is_htmx(request) else "batches/detail.html"
    return render(request, template, context)


@staff_required
@require_POST
def cancel_batch(request: HttpRequest, batch_id: str) -> HttpResponse:
    get_object_or_404(BatchJob, pk=batch_id)
    batch = do_cancel_batch(batch_id)
    messages.info(request, f"{batch.pk} is {batch.status}.")
    return redirect(f"/ui/batches/{batch.pk}/")


@login_required
@require_GET
def download_file(request: HttpRequest, file_id: str) -> HttpResponse:
    """A stored file as an attachment (what ``GET /v1/files/{id}/content`` returns)."""
    stored = get_object_or_404(StoredFile, pk=file_id)
    if not stored.path.exists():
        raise Http404("the file's content has been deleted")
    response = HttpResponse(stored.path.read_bytes(), content_type="application/jsonl")
    response["Content-Disposition"] = content_disposition_header(True, stored.filename)
    return response
