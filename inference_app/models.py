"""Rows of the inference app: uploaded files, batch jobs and stored responses (defined in
their packages)."""

from __future__ import annotations

from inference_app.batches.files import FilePurpose, StoredFile
from inference_app.batches.models import BatchJob, BatchLine, BatchStatus, LineStatus
from inference_app.responses_api.models import StoredResponse

__all__ = [
    "BatchJob",
    "BatchLine",
    "BatchStatus",
    "FilePurpose",
    "LineStatus",
    "StoredFile",
    "StoredResponse",
]
