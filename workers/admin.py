from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts import audit
from accounts.models import AuditAction
from workers.models import Placement


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
    """Pins of models to workers; every change is audited."""

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
