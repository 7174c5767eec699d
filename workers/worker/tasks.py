"""Celery tasks of the worker processes. Arguments are ids and JSON, never pickles: the
payloads of ``workers.broker.wire``, decoded here into their types.

Web sends these by name (``send_task``), so the web process never imports this module, and
with it llama.cpp. The worker command imports it before the worker starts consuming. The batch
lanes' tasks are the batch app's (``inference_app.batches.tasks``).
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from models_app.pulls import requeue_orphaned_pulls
from models_app.quantizations import requeue_orphaned_quantizations
from workers.broker.registry import live_workers
from workers.broker.wire import (
    EMBED,
    GENERATE,
    PULL,
    QUANTIZE,
    RESUME_ORPHANED_PULLS,
    EmbeddingsPayload,
    GenerationPayload,
    ModelSpec,
)
from workers.worker.inference import serve_embeddings, serve_generation
from workers.worker.pulls import run_pull
from workers.worker.quantize import run_quantize
from workers.worker.runtime import runtime


@shared_task(name=GENERATE, acks_late=True, ignore_result=True)
def generate(request_id: str, spec: dict[str, Any], payload: dict[str, Any]) -> None:
    serve_generation(request_id, ModelSpec.from_json(spec), GenerationPayload.from_json(payload))


@shared_task(name=EMBED, acks_late=True, ignore_result=True)
def embed(request_id: str, spec: dict[str, Any], payload: dict[str, Any]) -> None:
    serve_embeddings(request_id, ModelSpec.from_json(spec), EmbeddingsPayload.from_json(payload))


# No autoretry and no time limit: a download may rightly take hours, and a failure is recorded
# on the job (FAILED, with its error); pulling again resumes from the partial file.
@shared_task(name=PULL, acks_late=True, ignore_result=True)
def pull(job_id: int) -> None:
    """Download, check and register one pull job. Safe to deliver twice, and a no-op for a job
    that no longer exists: only the delivery that claims the QUEUED job runs it."""
    run_pull(job_id, runtime().instance)


# Like a pull: a big model may take long, and a failure is recorded on the job.
@shared_task(name=QUANTIZE, acks_late=True, ignore_result=True)
def quantize(job_id: int) -> None:
    """Quantize one model file with llama.cpp and register the result. Safe to deliver
    twice: only the delivery that claims the QUEUED job runs it."""
    run_quantize(job_id, runtime().instance)


@shared_task(name=RESUME_ORPHANED_PULLS, ignore_result=True)
def resume_orphaned_pulls() -> None:
    """Pulls and quantizations whose worker died go back to the queue (a pull resumes from its
    partial files).

    The message of a pull whose worker was killed stays unacknowledged in the broker until the
    visibility timeout (an hour) brings it back; this sends the job again within a beat.
    """
    live = {w.get("instance", "") for w in live_workers(runtime().redis)}
    requeue_orphaned_pulls(live)
    requeue_orphaned_quantizations(live)
