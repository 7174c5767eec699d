"""Teams, API keys, usage records and the audit log.

An ``ApiKey`` keeps only the sha256 of its secret: the secret itself is shown once, when the key
is made (``accounts.services.do_create_key``), and cannot be read back.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="teams")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApiKey(models.Model):
    """A secret that identifies a user (and optionally a team) to the API.

    ``allowed_models`` is null for every model, or a list of ``name:tag``. A limit of null means
    no limit. A key is usable while it is not revoked and not past ``expires_at``.
    """

    name = models.CharField(max_length=100, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="keys"
    )
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=16, editable=False, help_text="for display only")
    allowed_models = models.JSONField(
        null=True, blank=True, help_text='empty for every model, or a list: ["gemma3:270m"]'
    )
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_day = models.PositiveIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked = models.BooleanField(default=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def state(self) -> str:
        if self.revoked:
            return "revoked"
        return "expired" if self.expired else "active"


class UsageRecord(models.Model):
    """One API request: who made it, on which model, how many tokens, how long, what status.

    ``key``, ``user`` and ``team`` are empty when authentication is off.
    """

    key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL)
    model = models.CharField(max_length=200, blank=True)
    endpoint = models.CharField(max_length=200)
    method = models.CharField(max_length=8)
    status = models.PositiveSmallIntegerField()
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    duration_ms = models.FloatField()
    ttft_ms = models.FloatField(null=True, blank=True, help_text="streams: time to first chunk")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["key", "created_at"])]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.status} {self.model}"


class AuditAction(models.TextChoices):
    KEY_CREATED = "key_created"
    KEY_REVOKED = "key_revoked"
    MODEL_PULLED = "model_pulled"
    MODEL_DELETED = "model_deleted"
    MODEL_CREATED = "model_created"
    MODEL_QUANTIZED = "model_quantized"
    BLOB_UPLOADED = "blob_uploaded"
    PLACEMENT_CHANGED = "placement_changed"


class AuditEntry(models.Model):
    """One administrative action. Written by ``accounts.audit.record``; never edited."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, help_text="kept when the user is deleted")
    action = models.CharField(max_length=32, choices=AuditAction.choices)
    target = models.CharField(max_length=300)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.target}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor_name,
            "action": self.action,
            "target": self.target,
            "details": self.details,
            "created_at": self.created_at.isoformat(),
        }
