"""Celery tasks of the pulls queue: pulls and quantizations. Web sends them by name
(``workers.broker.wire``)."""

from __future__ import annotations

from celery import shared_task

from workers.broker.wire import PULL, QUANTIZE, RESUME_ORPHANED_PULLS


# No autoretry and no time limit: a download may rightly take hours, and a failure is recorded
# on the job (FAILED, with its error); pulling again resumes from the partial file.
@shared_task(name=PULL, acks_late=True, ignore_result=True)
def pull(job_id: int) -> None:
    """Download, check and register one pull job. Safe to deliver twice, and a no-op for a job
    that no longer exists: only the delivery that claims the QUEUED job runs it."""
    from models_app.puller import run_pull
    from workers.worker.runtime import runtime

    run_pull(job_id, runtime().instance)


# Like a pull: a big model may take long, and a failure is recorded on the job.
@shared_task(name=QUANTIZE, acks_late=True, ignore_result=True)
def quantize(job_id: int) -> None:
    """Quantize one model file with llama.cpp and register the result. Safe to deliver
    twice: only the delivery that claims the QUEUED job runs it."""
    from models_app.quantizer import run_quantize
    from workers.worker.runtime import runtime

    run_quantize(job_id, runtime().instance)


@shared_task(name=RESUME_ORPHANED_PULLS, ignore_result=True)
def resume_orphaned_pulls() -> None:
    """Pulls whose worker died go back to the queue, to resume from their partial files.

    The message of a pull whose worker was killed stays unacknowledged in the broker until the
    visibility timeout (an hour) brings it back; this sends the job again within a beat.
    """
    from models_app.pulls import requeue_orphaned_pulls
    from workers.broker.registry import live_workers
    from workers.worker.runtime import runtime

    live = {w.get("instance", "") for w in live_workers(runtime().redis)}
    requeue_orphaned_pulls(live)
