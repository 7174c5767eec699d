"""Quantize job services: ``do_*`` change a ``QuantizeJob``'s state (see its docstring).

Web starts a job (``models_app.create``) and cancels one; a worker on the ``pulls`` queue runs
it (``workers.worker.quantize``) through the claim, progress, verifying, finish and fail steps
here, each a conditional update that holds only while the job is still that worker's to run.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from models_app.models import ACTIVE_QUANTIZE, ModelRecord, QuantizeJob, QuantizeStatus
from workers.broker.wire import QUANTIZE

log = logging.getLogger(__name__)

_RUNNING = (QuantizeStatus.QUANTIZING, QuantizeStatus.VERIFYING)


def active_quantize(name: str) -> QuantizeJob | None:
    return QuantizeJob.objects.filter(name=name, status__in=ACTIVE_QUANTIZE).first()


def send_quantize(job_id: int) -> None:
    """Send the job to the ``pulls`` queue, whose workers run pulls and quantizations."""
    from project.celery import app
    from workers.broker import keys

    app.send_task(QUANTIZE, args=(job_id,), queue=keys.pulls_queue())


def do_claim_quantize(job_id: int, instance: str) -> QuantizeJob | None:
    """QUEUED -> QUANTIZING for this worker instance; None when the job is not QUEUED (done,
    cancelled, or running elsewhere: a message delivered twice is dropped here)."""
    claimed = QuantizeJob.objects.filter(pk=job_id, status=QuantizeStatus.QUEUED).update(
        status=QuantizeStatus.QUANTIZING, worker_instance=instance, error=""
    )
    if not claimed:
        return None
    job = QuantizeJob.objects.get(pk=job_id)
    QuantizeJob.objects.filter(pk=job_id).update(attempts=job.attempts + 1)
    return job


def do_record_quantize_progress(job_id: int, instance: str, completed: int) -> bool:
    """Store the bytes written; False when the job is no longer this worker's to run."""
    return bool(
        QuantizeJob.objects.filter(
            pk=job_id, status=QuantizeStatus.QUANTIZING, worker_instance=instance
        ).update(completed=completed)
    )


def do_mark_quantize_verifying(job_id: int, instance: str) -> bool:
    return bool(
        QuantizeJob.objects.filter(
            pk=job_id, status=QuantizeStatus.QUANTIZING, worker_instance=instance
        ).update(status=QuantizeStatus.VERIFYING)
    )


def do_finish_quantize(job_id: int, instance: str, record: ModelRecord) -> bool:
    return bool(
        QuantizeJob.objects.filter(
            pk=job_id, status=QuantizeStatus.VERIFYING, worker_instance=instance
        ).update(status=QuantizeStatus.READY, model=record, finished_at=timezone.now())
    )


def do_fail_quantize(job_id: int, instance: str, message: str) -> bool:
    failed = QuantizeJob.objects.filter(
        pk=job_id, status__in=_RUNNING, worker_instance=instance
    ).update(status=QuantizeStatus.FAILED, error=message[:4000], finished_at=timezone.now())
    if failed:
        log.warning("quantize %s failed: %s", job_id, message)
    return bool(failed)


def do_cancel_quantize(job_id: int) -> bool:
    """Any active state -> CANCELLED. The worker notices when llama.cpp returns."""
    return bool(
        QuantizeJob.objects.filter(pk=job_id, status__in=ACTIVE_QUANTIZE).update(
            status=QuantizeStatus.CANCELLED, error="cancelled", finished_at=timezone.now()
        )
    )


def requeue_orphaned_quantizations(live_instances: set[str]) -> int:
    """Jobs left QUANTIZING or VERIFYING by a worker that is gone go back to QUEUED and are
    sent again; whoever takes them writes the file anew."""
    orphans = list(
        QuantizeJob.objects.filter(status__in=_RUNNING)
        .exclude(worker_instance__in=live_instances)
        .values_list("pk", "worker_instance")
    )
    sent = 0
    for job_id, instance in orphans:
        if QuantizeJob.objects.filter(
            pk=job_id, status__in=_RUNNING, worker_instance=instance
        ).update(status=QuantizeStatus.QUEUED, worker_instance=""):
            log.info("quantize %s lost its worker %s; sending it again", job_id, instance)
            send_quantize(job_id)
            sent += 1
    return sent
