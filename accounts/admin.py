from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import ApiKey, AuditEntry, Team, UsageRecord
from accounts.services import (
    check_allowed_models,
    do_audit_key_created,
    do_revoke_key,
    issue_secret,
)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)
    filter_horizontal = ("members",)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are made here like any row; the secret is shown once, in the message after saving.
    Revoking goes through the action (or the flag), so that it is audited."""

    list_display = (
        "name",
        "prefix",
        "user",
        "team",
        "state",
        "requests_per_minute",
        "tokens_per_minute",
        "tokens_per_day",
        "expires_at",
    )
    list_filter = ("revoked", "team")
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = ("prefix", "revoked_at", "created_at")
    fields = (
        "name",
        "user",
        "team",
        "allowed_models",
        "requests_per_minute",
        "tokens_per_minute",
        "tokens_per_day",
        "expires_at",
        "revoked",
        "prefix",
        "revoked_at",
        "created_at",
    )
    actions = ["revoke_keys"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        obj.allowed_models = check_allowed_models(obj.allowed_models)
        if change:
            revoking = obj.revoked and not ApiKey.objects.get(pk=obj.pk).revoked
            if revoking:
                obj.revoked = False
                super().save_model(request, obj, form, change)
                do_revoke_key(obj, request.user)
            else:
                super().save_model(request, obj, form, change)
            return
        secret = issue_secret(obj)
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            do_audit_key_created(obj, request.user)
        messages.warning(
            request,
            f"The secret of key “{obj.name}” is {secret} — copy it now: it is not stored and "
            "will not be shown again.",
        )

    @admin.action(description="Revoke the selected keys")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        keys = list(queryset.filter(revoked=False))
        for key in keys:
            do_revoke_key(key, request.user)
        self.message_user(request, f"Revoked {len(keys)} key(s).")


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "key",
        "user",
        "team",
        "model",
        "endpoint",
        "status",
        "prompt_tokens",
        "completion_tokens",
        "duration_ms",
    )
    list_filter = ("status", "model", "team", "endpoint")
    search_fields = ("key__name", "user__username", "model")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor_name", "action", "target")
    list_filter = ("action",)
    search_fields = ("actor_name", "target")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
