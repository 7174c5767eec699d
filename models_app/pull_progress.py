"""A pull job's progress as Ollama's ``/api/pull`` objects, read from its row; a quantize
job's the same way, as ``/api/create`` shows it (``quantizing F16 model to Q4_K_M`` with
``total`` and ``completed``, then the same ending: ``quantize_events``).

``pulling manifest``; then ``pulling <digest>`` (with ``digest``, ``total``, ``completed``) for
each file whenever its bytes on disk change; ``verifying sha256 digest``; ``writing manifest``;
``success``. A job that fails or is cancelled ends the sequence with ``{"error": ...}``. The row
is polled: it is the source of truth, written by whichever worker runs the job, and a job that
changes worker (one died) reads the same here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from models_app.models import PullJob, PullStatus, QuantizeJob, QuantizeStatus

POLL_SECONDS = 0.2
# The digest Ollama puts on its quantizing progress, where no file has one yet.
_QUANTIZING_DIGEST = "0000000000000000000"


def _file_event(entry: dict[str, Any]) -> dict[str, Any]:
    sha = entry["sha256"]
    return {
        "status": f"pulling {sha[:12]}",
        "digest": f"sha256:{sha}",
        "total": entry["size"],
        "completed": entry["completed"],
    }


async def pull_events(job_id: int) -> AsyncIterator[dict[str, Any]]:
    """The pull job's objects until it ends."""
    yield {"status": "pulling manifest"}
    shown: dict[str, int] = {}
    verifying_shown = False
    while True:
        job = await PullJob.objects.filter(pk=job_id).afirst()
        if job is None:
            yield {"error": "the pull was deleted"}
            return
        downloaded = job.status in (PullStatus.VERIFYING, PullStatus.READY)
        for entry in job.file_progress():
            if downloaded:
                entry["completed"] = entry["size"]
            if shown.get(entry["name"]) != entry["completed"]:
                shown[entry["name"]] = entry["completed"]
                yield _file_event(entry)
        if downloaded and not verifying_shown:
            verifying_shown = True
            yield {"status": "verifying sha256 digest"}
        if job.status == PullStatus.READY:
            yield {"status": "writing manifest"}
            yield {"status": "success"}
            return
        if job.status in (PullStatus.FAILED, PullStatus.CANCELLED):
            yield {"error": job.error or f"pull {job.status}"}
            return
        await asyncio.sleep(POLL_SECONDS)


async def quantize_events(job_id: int) -> AsyncIterator[dict[str, Any]]:
    """The quantize job's objects until it ends (no ``pulling manifest``: the create request
    says what it does itself)."""
    shown: int | None = None
    verifying_shown = False
    while True:
        job = await QuantizeJob.objects.filter(pk=job_id).afirst()
        if job is None:
            yield {"error": "the quantization was deleted"}
            return
        written = job.status in (QuantizeStatus.VERIFYING, QuantizeStatus.READY)
        completed = job.total if written else job.completed
        if completed != shown:
            shown = completed
            yield {
                "status": f"quantizing {job.source_quantization} model to {job.quantize}",
                "digest": _QUANTIZING_DIGEST,
                "total": job.total,
                "completed": completed,
            }
        if written and not verifying_shown:
            verifying_shown = True
            yield {"status": "verifying sha256 digest"}
        if job.status == QuantizeStatus.READY:
            yield {"status": "writing manifest"}
            yield {"status": "success"}
            return
        if job.status in (QuantizeStatus.FAILED, QuantizeStatus.CANCELLED):
            yield {"error": job.error or f"quantize {job.status}"}
            return
        await asyncio.sleep(POLL_SECONDS)
