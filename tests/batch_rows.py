"""Rows of a batch for tests that work on the batch tables directly."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone


def running_batch() -> Any:
    """A /v1/completions batch in progress, with no lines yet."""
    from inference_app.batches.files import StoredFile
    from inference_app.batches.models import BatchJob, BatchStatus

    upload = StoredFile.objects.create(purpose="batch", filename="x.jsonl", size=1)
    return BatchJob.objects.create(
        endpoint="/v1/completions",
        input_file=upload,
        status=BatchStatus.IN_PROGRESS,
        expires_at=timezone.now() + timedelta(days=1),
    )
