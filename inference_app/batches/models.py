"""Batch jobs: one row per batch, one per input line.

A batch's status moves: VALIDATING -> IN_PROGRESS -> FINALIZING -> COMPLETED, or to FAILED
(invalid input: nothing runs), CANCELLING -> CANCELLED, or EXPIRED (the completion window
passed). COMPLETED, FAILED, CANCELLED and EXPIRED are terminal. Request counts are derived
from the lines, never stored, so they cannot drift.

A line is PENDING until it is sent to its model's batch lane (QUEUED), then RUNNING on a
worker (with the worker's instance id), then COMPLETED or FAILED exactly once; CANCELLED or
EXPIRED when its batch ends before it runs. A line whose worker dies goes back to PENDING.

Each batch keeps only ``HERD_BATCH_WINDOW`` lines queued or running at a time and sends its
next lines as earlier ones finish (several lines a message), so batches that share a lane
take turns instead of the later one waiting behind the whole of the earlier one.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Count, Q

from inference_app.batches.files import StoredFile


def new_batch_id() -> str:
    return f"batch_{secrets.token_hex(12)}"


class BatchStatus(models.TextChoices):
    VALIDATING = "validating"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


TERMINAL = (BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.EXPIRED, BatchStatus.CANCELLED)


class LineStatus(models.TextChoices):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


UNFINISHED = (LineStatus.PENDING, LineStatus.QUEUED, LineStatus.RUNNING)
IN_FLIGHT = (LineStatus.QUEUED, LineStatus.RUNNING)
NOT_STARTED = (LineStatus.PENDING, LineStatus.QUEUED)


def _ts(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment else None


class BatchJob(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=new_batch_id, editable=False)
    endpoint = models.CharField(max_length=64)
    input_file = models.ForeignKey(StoredFile, on_delete=models.PROTECT, related_name="+")
    completion_window = models.CharField(max_length=16, default="24h")
    metadata = models.JSONField(null=True, blank=True)
    # Who created the batch (None with authentication off): its lines' usage is theirs.
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Whose it is (the key's user; None with authentication off): only they, and staff, see,
    # cancel or read the outputs of it, and the key's team where it has one. The outputs are
    # theirs too.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=BatchStatus.choices, default=BatchStatus.VALIDATING
    )
    errors = models.JSONField(null=True, blank=True)
    output_file = models.ForeignKey(
        StoredFile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error_file = models.ForeignKey(
        StoredFile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    in_progress_at = models.DateTimeField(null=True, blank=True)
    finalizing_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    cancelling_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def request_counts(self) -> dict[str, int]:
        counts = self.lines.aggregate(
            total=Count("pk"),
            completed=Count("pk", filter=Q(status=LineStatus.COMPLETED)),
            failed=Count("pk", filter=Q(status=LineStatus.FAILED)),
        )
        return {
            "total": counts["total"],
            "completed": counts["completed"],
            "failed": counts["failed"],
        }

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": self.errors,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": _ts(self.created_at),
            "in_progress_at": _ts(self.in_progress_at),
            "expires_at": _ts(self.expires_at),
            "finalizing_at": _ts(self.finalizing_at),
            "completed_at": _ts(self.completed_at),
            "failed_at": _ts(self.failed_at),
            "expired_at": _ts(self.expired_at),
            "cancelling_at": _ts(self.cancelling_at),
            "cancelled_at": _ts(self.cancelled_at),
            "request_counts": self.request_counts(),
            "metadata": self.metadata,
        }


class BatchLine(models.Model):
    batch = models.ForeignKey(BatchJob, on_delete=models.CASCADE, related_name="lines")
    line_number = models.PositiveIntegerField()
    custom_id = models.CharField(max_length=512)
    model_name = models.CharField(max_length=200)
    body = models.JSONField()
    status = models.CharField(max_length=16, choices=LineStatus.choices, default=LineStatus.PENDING)
    worker_instance = models.CharField(max_length=64, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    response = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # When the line was last sent to a lane: a message lost by the broker shows as a line
    # QUEUED long ago whose message is nowhere (batches.recovery.release_lost_lines).
    queued_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "line_number"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "custom_id"], name="one_line_per_custom_id"),
        ]
        indexes = [models.Index(fields=["batch", "status"])]
