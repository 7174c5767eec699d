from __future__ import annotations

from django.contrib import admin

from workers.models import Placement


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
    list_display = ("model", "worker", "created_at")
    list_filter = ("worker",)
    search_fields = ("model__name", "worker")
    autocomplete_fields = ("model",)
