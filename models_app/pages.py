"""The catalog pages: every model with where it is resident and what it is a variant of, pulls
with live progress, a page per model, "Create a variant", and deletion behind a confirmation.

``GET /`` is also where Ollama clients check that a server is up: only a browser (one that asks
for ``text/html``) gets the catalog; anything else gets Ollama's plain answer.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
    require_safe,
)

from accounts import audit
from accounts.models import AuditAction, UsageRecord
from models_app import views as ollama_root
from models_app.forms import VariantForm
from models_app.models import (
    FINISHED_PULL,
    FINISHED_QUANTIZE,
    ModelRecord,
    PullJob,
    PullStatus,
    QuantizeJob,
    QuantizeStatus,
)
from models_app.pulls import check_pull_reference, do_cancel_pull, do_start_pull
from models_app.quantizations import do_cancel_quantize
from models_app.references import PullRefused
from models_app.services import ModelNotFound, do_delete_model
from project.broker import sync_client
from project.pages.access import is_htmx, staff_required
from workers.broker.registry import live_workers

log = logging.getLogger(__name__)

RECENT_PULLS = 8
RECENT_USAGE = 10


def wants_html(request: HttpRequest) -> bool:
    """A browser names ``text/html``; Ollama clients, curl and health checks do not (``*/*``
    alone is not enough: curl and httpx send it)."""
    return "text/html" in request.headers.get("Accept", "")


def home(request: HttpRequest) -> HttpResponseBase:
    if not wants_html(request):
        response = ollama_root.root(request)
    elif not request.user.is_authenticated:
        response = redirect_to_login(request.get_full_path())
    else:
        response = catalog(request)
    # Caches must keep the two answers apart.
    patch_vary_headers(response, ["Accept", "Cookie"])
    return response


def residency() -> dict[str, list[dict[str, Any]]] | None:
    """Model name -> the live workers holding it (name, device); None when the registry
    cannot be read."""
    try:
        workers = live_workers(sync_client())
    except redis.RedisError as exc:
        log.warning("worker registry unreachable: %s", exc)
        return None
    where: dict[str, list[dict[str, Any]]] = {}
    for worker in workers:
        for name in worker.get("resident", []):
            where.setdefault(name, []).append(
                {"name": worker.get("name", "?"), "device": worker.get("device", "?")}
            )
    return where


def _model_rows() -> dict[str, Any]:
    where = residency()
    rows = [
        {"record": record, "resident": (where or {}).get(record.name, [])}
        for record in ModelRecord.objects.all()
    ]
    return {"rows": rows, "registry_down": where is None}


@require_safe
def catalog(request: HttpRequest) -> HttpResponse:
    context = {
        **_model_rows(),
        "pulls": [pull_view(job) for job in PullJob.objects.all()[:RECENT_PULLS]],
        "quantizations": [quantize_view(job) for job in QuantizeJob.objects.all()[:RECENT_PULLS]],
        "nav": "catalog",
    }
    return render(request, "models/catalog.html", context)


@login_required
@require_GET
def model_table(request: HttpRequest) -> HttpResponse:
    """The table alone, which the catalog reloads when a pull finishes."""
    return render(request, "models/_table.html", _model_rows())


@login_required
@require_GET
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    record = get_object_or_404(ModelRecord, pk=pk)
    usage = UsageRecord.objects.filter(model=record.name)
    totals = usage.aggregate(prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"))
    context = {
        "record": record,
        "resident": (residency() or {}).get(record.name, []),
        "info": sorted(record.model_info.items()),
        "pulls": [pull_view(job) for job in record.pulls.all()[:RECENT_PULLS]],
        "quantizations": [quantize_view(job) for job in record.quantizations.all()[:RECENT_PULLS]],
        "usage": usage.select_related("key")[:RECENT_USAGE],
        "usage_requests": usage.count(),
        "usage_prompt": totals["prompt"] or 0,
        "usage_completion": totals["completion"] or 0,
        "nav": "catalog",
    }
    return render(request, "models/detail.html", context)


@staff_required
@require_http_methods(["GET", "POST"])
def delete_model(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation; POST deletes (as ``DELETE /api/delete`` does)."""
    record = get_object_or_404(ModelRecord, pk=pk)
    if request.method == "GET":
        return render(request, "models/confirm_delete.html", {"record": record, "nav": "catalog"})
    try:
        removed = do_delete_model(record.name)
    except ModelNotFound:
        messages.info(request, f"{record.name} was already deleted")
    else:
        audit.record(
            request.user,
            AuditAction.MODEL_DELETED,
            record.name,
            {"files": [str(p) for p in removed]},
        )
        files = f" and {len(removed)} file(s)" if removed else ""
        messages.success(request, f"Deleted {record.name}{files}.")
    return redirect("/")


@staff_required
@require_http_methods(["GET", "POST"])
def create_variant(request: HttpRequest) -> HttpResponse:
    """A variant of a model (``?from=NAME`` picks it): its file, with its own system prompt,
    template and parameters, as ``POST /api/create`` with ``from`` makes one."""
    form = VariantForm(request.POST or None, initial={"source": request.GET.get("from")})
    if request.method == "POST" and form.is_valid():
        record = form.create(request.user)
        if record is not None:
            messages.success(request, f"Created {record.name}, a variant of {record.parent_model}.")
            return redirect(f"/ui/models/{record.pk}/")
    return render(request, "models/variant.html", {"form": form, "nav": "catalog"})


@staff_required
@require_POST
def start_pull(request: HttpRequest) -> HttpResponse:
    """Start (or join) a pull, as ``POST /api/pull`` does; htmx gets the progress bar."""
    raw = request.POST.get("reference", "")
    try:
        job, joined = do_start_pull(check_pull_reference(raw))
    except PullRefused as exc:
        if is_htmx(request):
            return render(request, "models/_pull_refused.html", {"message": str(exc)})
        messages.error(request, str(exc))
        return redirect("/")
    if not joined:
        audit.record(request.user, AuditAction.MODEL_PULLED, job.name, {"pull": job.pk})
    if is_htmx(request):
        return render(request, "models/_pull.html", {"p": pull_view(job), "joined": joined})
    messages.success(request, f"Pulling {job.name}.")
    return redirect("/")


@login_required
@require_GET
def pull_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """One pull's bar. It polls itself while the pull runs; its last answer tells the page
    to reload the model table when a model has arrived."""
    job = get_object_or_404(PullJob, pk=pk)
    response = render(request, "models/_pull.html", {"p": pull_view(job)})
    if job.status == PullStatus.READY:
        response["HX-Trigger"] = "models-changed"
    return response


@staff_required
@require_POST
def cancel_pull(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(PullJob, pk=pk)
    if not do_cancel_pull(job.pk):
        messages.info(request, f"The pull of {job.name} had already finished.")
    job.refresh_from_db()
    if is_htmx(request):
        return render(request, "models/_pull.html", {"p": pull_view(job)})
    return redirect("/")


def pull_view(job: PullJob) -> dict[str, Any]:
    """What the bar shows: whole percent of the bytes on disk (a pull past downloading has
    them all), and whether it is still running (and so still polls)."""
    if job.status in (PullStatus.VERIFYING, PullStatus.READY):
        percent = 100
    elif job.total:
        percent = min(100, job.completed * 100 // job.total)
    else:
        percent = 0
    return {"job": job, "percent": percent, "active": job.status not in FINISHED_PULL}


@login_required
@require_GET
def quantize_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """One quantization's bar, polling itself as a pull's does."""
    job = get_object_or_404(QuantizeJob, pk=pk)
    response = render(request, "models/_quantize.html", {"q": quantize_view(job)})
    if job.status == QuantizeStatus.READY:
        response["HX-Trigger"] = "models-changed"
    return response


@staff_required
@require_POST
def cancel_quantize(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(QuantizeJob, pk=pk)
    if not do_cancel_quantize(job.pk):
        messages.info(request, f"The quantization of {job.name} had already finished.")
    job.refresh_from_db()
    if is_htmx(request):
        return render(request, "models/_quantize.html", {"q": quantize_view(job)})
    return redirect("/")


def quantize_view(job: QuantizeJob) -> dict[str, Any]:
    """What the bar shows: whole percent of the estimated bytes written (all of them once the
    file is written), and whether it is still running (and so still polls)."""
    if job.status in (QuantizeStatus.VERIFYING, QuantizeStatus.READY):
        percent = 100
    elif job.total:
        percent = min(100, job.completed * 100 // job.total)
    else:
        percent = 0
    return {"job": job, "percent": percent, "active": job.status not in FINISHED_QUANTIZE}
