"""Rows of the inference app: uploaded files and batch jobs (defined in their packages)."""

from __future__ import annotations

from inference_app.batches.files import FilePurpose, StoredFile
from inference_app.batches.models import BatchJob, BatchLine, BatchStatus, LineStatus

__all__ = ["BatchJob", "BatchLine", "BatchStatus", "FilePurpose", "LineStatus", "StoredFile"]
