"""The admin: model records (edit defaults, template and system prompt; delete through the
service, so files and workers follow), a form to pull from a reference, one to create a
variant of a model, and pull and quantize jobs."""

from __future__ import annotations

import contextlib
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from accounts import audit
from accounts.models import AuditAction
from models_app.forms import VariantForm
from models_app.models import ModelRecord, PullJob, QuantizeJob
from models_app.pulls import check_pull_reference, do_cancel_pull, do_start_pull
from models_app.quantizations import do_cancel_quantize
from models_app.references import PullRefused
from models_app.services import ModelNotFound, do_delete_model
from workers.models import Placement


class PullForm(forms.Form):
    reference = forms.CharField(
        max_length=300,
        help_text="hf.co/{owner}/{repo}[:quant] or hf.co/{owner}/{repo}/{file}.gguf",
        widget=forms.TextInput(attrs={"size": 80}),
    )


@admin.register(ModelRecord)
class ModelRecordAdmin(admin.ModelAdmin):
    change_list_template = "admin/models_app/modelrecord/change_list.html"
    list_display = (
        "name",
        "status",
        "parent_model",
        "family",
        "parameter_size",
        "quantization",
        "context_length",
        "size",
    )
    list_filter = ("status", "family", "quantization")
    search_fields = ("name", "family")
    readonly_fields = (
        "name",
        "status",
        "path",
        "sha256",
        "size",
        "architecture",
        "family",
        "parameter_count",
        "parameter_size",
        "quantization",
        "context_length",
        "embedding_length",
        "capabilities",
        "model_info",
        "parent_model",
        "created_at",
        "modified_at",
    )
    fieldsets = (
        (None, {"fields": ("name", "status", "parent_model", "path", "size", "sha256")}),
        (
            "Metadata (from the GGUF file)",
            {
                "fields": (
                    "architecture",
                    "family",
                    "parameter_count",
                    "parameter_size",
                    "quantization",
                    "context_length",
                    "embedding_length",
                    "capabilities",
                    "model_info",
                )
            },
        ),
        (
            "Behaviour",
            {
                "fields": (
                    "chat_template",
                    "reasoning_tags",
                    "system_prompt",
                    "default_options",
                    "messages",
                    "license",
                    "aliases",
                )
            },
        ),
        ("Times", {"fields": ("created_at", "modified_at")}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # models come from a pull or `herd import`, with their file

    def get_urls(self) -> list[URLPattern]:
        pull = path(
            "pull/",
            self.admin_site.admin_view(self.pull_view),
            name="models_app_modelrecord_pull",
        )
        variant = path(
            "variant/",
            self.admin_site.admin_view(self.variant_view),
            name="models_app_modelrecord_variant",
        )
        return [pull, variant, *super().get_urls()]

    def variant_view(self, request: HttpRequest) -> HttpResponse:
        """Create a variant of a model: its file, with its own system prompt, template and
        parameters (as ``POST /api/create`` with ``from``)."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        form = VariantForm(request.POST or None, initial={"source": request.GET.get("source")})
        if request.method == "POST" and form.is_valid():
            record = form.create(request.user)
            if record is not None:
                self.message_user(
                    request,
                    f"created {record.name}, a variant of {record.parent_model}",
                    messages.SUCCESS,
                )
                url = reverse("admin:models_app_modelrecord_change", args=[record.pk])
                return HttpResponseRedirect(url)
        context = {
            **self.admin_site.each_context(request),
            "title": "Create a variant",
            "form": form,
            "opts": self.model._meta,
            "submit": "Create",
        }
        return TemplateResponse(request, "admin/models_app/modelrecord/pull.html", context)

    def pull_view(self, request: HttpRequest) -> HttpResponse:
        form = PullForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                job, joined = do_start_pull(check_pull_reference(form.cleaned_data["reference"]))
            except PullRefused as exc:
                form.add_error("reference", str(exc))
            else:
                if not joined:
                    audit.record(request.user, AuditAction.MODEL_PULLED, job.name, {"pull": job.pk})
                verb = "joined the running pull of" if joined else "started pulling"
                self.message_user(request, f"{verb} {job.name}", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:models_app_pulljob_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Pull a model from Hugging Face",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/models_app/modelrecord/pull.html", context)

    def delete_model(self, request: HttpRequest, obj: ModelRecord) -> None:
        with contextlib.suppress(ModelNotFound):  # deleted meanwhile
            removed = do_delete_model(obj.name)
            audit.record(
                request.user,
                AuditAction.MODEL_DELETED,
                obj.name,
                {"files": [str(p) for p in removed]},
            )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ModelRecord]) -> None:
        for record in list(queryset):
            self.delete_model(request, record)


@admin.register(PullJob)
class PullJobAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "progress", "attempts", "error", "created_at")
    list_filter = ("status",)
    search_fields = ("name", "repo_id")
    actions = ["cancel_pulls"]
    readonly_fields = [f.name for f in PullJob._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # started from the model list's "Pull a model"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="progress")
    def progress(self, job: PullJob) -> str:
        if not job.total:
            return "-"
        return f"{100 * job.completed // job.total}% of {job.total} bytes"

    @admin.action(description="Cancel the selected pulls")
    def cancel_pulls(self, request: HttpRequest, queryset: QuerySet[PullJob]) -> None:
        cancelled = sum(do_cancel_pull(job.pk) for job in queryset)
        self.message_user(request, f"cancelled {cancelled} pull(s)")


@admin.register(QuantizeJob)
class QuantizeJobAdmin(admin.ModelAdmin):
    list_display = ("name", "quantize", "status", "progress", "attempts", "error", "created_at")
    list_filter = ("status", "quantize")
    search_fields = ("name", "source")
    actions = ["cancel_quantizations"]
    readonly_fields = [f.name for f in QuantizeJob._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # started by /api/create (herd create) with a quantize type

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="progress")
    def progress(self, job: QuantizeJob) -> str:
        if not job.total:
            return "-"
        return f"{100 * job.completed // job.total}% of about {job.total} bytes"

    @admin.action(description="Cancel the selected quantizations")
    def cancel_quantizations(self, request: HttpRequest, queryset: QuerySet[QuantizeJob]) -> None:
        cancelled = sum(do_cancel_quantize(job.pk) for job in queryset)
        self.message_user(request, f"cancelled {cancelled} quantization(s)")


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
    """Pins of models to workers (``workers.models``; its admin is here, with the other model
    pages, so that nothing in ``workers/`` is web code); every change is audited."""

    list_display = ("model", "worker", "created_at")
    list_filter = ("worker",)
    search_fields = ("model__name", "worker")
    autocomplete_fields = ("model",)

    def save_model(self, request: HttpRequest, obj: Placement, form: Any, change: bool) -> None:
        before = Placement.objects.filter(pk=obj.pk).first() if change else None
        super().save_model(request, obj, form, change)
        details: dict[str, Any] = {"model": obj.model.name, "worker": obj.worker}
        if before is not None:
            details["was"] = {"model": before.model.name, "worker": before.worker}
        details["change"] = "changed" if before is not None else "pinned"
        audit.record(request.user, AuditAction.PLACEMENT_CHANGED, str(obj), details)

    def delete_model(self, request: HttpRequest, obj: Placement) -> None:
        details = {"model": obj.model.name, "worker": obj.worker, "change": "unpinned"}
        super().delete_model(request, obj)
        audit.record(request.user, AuditAction.PLACEMENT_CHANGED, str(obj), details)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Placement]) -> None:
        for placement in list(queryset):
            self.delete_model(request, placement)
