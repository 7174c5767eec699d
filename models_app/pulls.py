"""Pull job services: ``check_*`` validate, ``do_*`` change state (see ``PullJob``).

Every state change is a conditional UPDATE on the state it expects (and, for a worker, on its
own instance id), so a worker that lost its job to a restart, a cancel or the orphan reaper
finds out at its next write and stops.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from models_app.hub import PullPlan, check_free_disk, resolve_plan
from models_app.models import ACTIVE_PULL, ModelRecord, PullJob, PullStatus
from models_app.names import InvalidModelName, normalize_model_name
from models_app.quantizations import active_quantize
from models_app.references import HubReference, PullRefused, is_hub_reference, parse_reference
from workers.broker.wire import PULL

log = logging.getLogger(__name__)


def check_pull_reference(raw: str) -> HubReference:
    """Parse what a client asked to pull. Raises PullRefused (400) for anything that is not a
    Hugging Face reference."""
    if not raw or not raw.strip():
        raise PullRefused("model is required")
    if not is_hub_reference(raw):
        try:
            name = normalize_model_name(raw)
        except InvalidModelName as exc:
            raise PullRefused(str(exc)) from None
        raise PullRefused(
            f"cannot pull {name!r}: Herd pulls from Hugging Face; use "
            "hf.co/{owner}/{repo}[:quant] or hf.co/{owner}/{repo}/{file}.gguf"
        )
    return parse_reference(raw)


def check_pull_plan(reference: HubReference) -> PullPlan:
    """Resolve ``reference`` on the hub and check the disk can hold it. Raises PullRefused."""
    plan = resolve_plan(reference)
    check_free_disk(plan.total, settings.MODELS_DIR)
    return plan


def active_pull(name: str) -> PullJob | None:
    return PullJob.objects.filter(name=name, status__in=ACTIVE_PULL).first()


def do_start_pull(reference: HubReference) -> tuple[PullJob, bool]:
    """The active pull of ``reference.name``, joined (True) or started (False). Raises
    PullRefused (409) while the name is being quantized.

    A new job is resolved on the hub first (raises PullRefused, and nothing is written), then
    sent to the ``pulls`` queue once its row is committed.
    """
    existing = active_pull(reference.name)
    if existing is not None:
        return existing, True
    if active_quantize(reference.name) is not None:
        raise PullRefused(
            f"model '{reference.name}' is being quantized: wait for it to finish or cancel it",
            409,
        )
    plan = check_pull_plan(reference)
    try:
        with transaction.atomic():
            job = PullJob.objects.create(
                name=reference.name,
                repo_id=plan.reference.repo_id,
                revision=plan.revision,
                files=[f.to_json() for f in plan.files],
                total=plan.total,
            )
            transaction.on_commit(lambda: send_pull(job.pk))
    except IntegrityError:
        # Another request started the same pull between our check and our insert.
        existing = active_pull(reference.name)
        if existing is None:
            raise
        return existing, True
    return job, False


def send_pull(job_id: int) -> None:
    """Send the job to the ``pulls`` queue, whose workers run pulls and quantizations."""
    from project.celery import app
    from workers.broker import keys

    app.send_task(PULL, args=(job_id,), queue=keys.pulls_queue())


def do_claim_pull(job_id: int, instance: str) -> PullJob | None:
    """QUEUED -> DOWNLOADING for this worker instance; None when the job is not QUEUED (done,
    cancelled, or running elsewhere: a message delivered twice is dropped here)."""
    claimed = PullJob.objects.filter(pk=job_id, status=PullStatus.QUEUED).update(
        status=PullStatus.DOWNLOADING, worker_instance=instance, error=""
    )
    if not claimed:
        return None
    job = PullJob.objects.get(pk=job_id)
    PullJob.objects.filter(pk=job_id).update(attempts=job.attempts + 1)
    return job


def do_record_progress(job_id: int, instance: str, completed: int) -> bool:
    """Store the bytes on disk; False when the job is no longer this worker's to run."""
    return bool(
        PullJob.objects.filter(
            pk=job_id, status=PullStatus.DOWNLOADING, worker_instance=instance
        ).update(completed=completed)
    )


def do_mark_verifying(job_id: int, instance: str) -> bool:
    return bool(
        PullJob.objects.filter(
            pk=job_id, status=PullStatus.DOWNLOADING, worker_instance=instance
        ).update(status=PullStatus.VERIFYING)
    )


def do_finish_pull(job_id: int, instance: str, record: ModelRecord) -> bool:
    return bool(
        PullJob.objects.filter(
            pk=job_id, status=PullStatus.VERIFYING, worker_instance=instance
        ).update(status=PullStatus.READY, model=record, finished_at=timezone.now())
    )


def do_fail_pull(job_id: int, instance: str, message: str) -> bool:
    running = (PullStatus.DOWNLOADING, PullStatus.VERIFYING)
    failed = PullJob.objects.filter(pk=job_id, status__in=running, worker_instance=instance).update(
        status=PullStatus.FAILED, error=message[:4000], finished_at=timezone.now()
    )
    if failed:
        log.warning("pull %s failed: %s", job_id, message)
    return bool(failed)


def do_cancel_pull(job_id: int) -> bool:
    """Any active state -> CANCELLED. The worker notices at its next progress write."""
    return bool(
        PullJob.objects.filter(pk=job_id, status__in=ACTIVE_PULL).update(
            status=PullStatus.CANCELLED, error="cancelled", finished_at=timezone.now()
        )
    )


def requeue_orphaned_pulls(live_instances: set[str]) -> int:
    """Jobs left DOWNLOADING or VERIFYING by a worker that is gone go back to QUEUED and are
    sent again; whoever takes them resumes from the partial file."""
    orphans = list(
        PullJob.objects.filter(status__in=(PullStatus.DOWNLOADING, PullStatus.VERIFYING))
        .exclude(worker_instance__in=live_instances)
        .values_list("pk", "worker_instance")
    )
    sent = 0
    for job_id, instance in orphans:
        if PullJob.objects.filter(
            pk=job_id,
            status__in=(PullStatus.DOWNLOADING, PullStatus.VERIFYING),
            worker_instance=instance,
        ).update(status=PullStatus.QUEUED, worker_instance=""):
            log.info("pull %s lost its worker %s; sending it again", job_id, instance)
            send_pull(job_id)
            sent += 1
    return sent
