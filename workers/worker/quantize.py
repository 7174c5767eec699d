"""Run one quantize job on a worker: llama.cpp writes the new file, the job row follows it.

Runs in a Celery thread of a worker consuming the ``pulls`` queue, beside the pulls (states in
``QuantizeJob``): QUANTIZING while ``workers.engine.quantize`` writes
``MODELS_DIR/.partial/quantize-<job>.gguf`` (a watcher thread stores its size as the job's
``completed``, so ``/api/create`` shows progress as ``/api/pull`` does), VERIFYING while the
file is hashed and moved to the blob store, READY once its record exists, with its metadata
read from the new file. A cancel takes effect when llama.cpp returns: its call cannot be
stopped part way.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from django.conf import settings

from models_app.blobs import blob_path
from models_app.gguf_metadata import GGUFError
from models_app.hub import PullCancelled, check_free_disk
from models_app.models import QuantizeJob
from models_app.quantizations import (
    do_claim_quantize,
    do_fail_quantize,
    do_finish_quantize,
    do_mark_quantize_verifying,
    do_record_quantize_progress,
)
from models_app.references import PullRefused
from models_app.registration import do_apply_settings, do_import_model, file_sha256
from workers.engine.quantize import QuantizeError, quantize_gguf
from workers.worker.pulls import PROGRESS_INTERVAL

log = logging.getLogger(__name__)


def run_quantize(job_id: int, instance: str) -> None:
    """Run the job if it is QUEUED; any other state means someone else has it, or had it."""
    job = do_claim_quantize(job_id, instance)
    if job is None:
        return
    partial = Path(settings.MODELS_DIR) / ".partial" / f"quantize-{job.pk}.gguf"
    try:
        _quantize(job, instance, partial)
    except PullCancelled:
        log.info("quantize %s of %s stopped: cancelled or taken over", job.pk, job.name)
    except PullRefused as exc:
        do_fail_quantize(job.pk, instance, str(exc))
    except (QuantizeError, OSError, GGUFError) as exc:
        do_fail_quantize(job.pk, instance, f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        log.exception("quantize %s crashed", job.pk)
        do_fail_quantize(job.pk, instance, f"internal error: {type(exc).__name__}: {exc}")
    finally:
        partial.unlink(missing_ok=True)


def _quantize(job: QuantizeJob, instance: str, partial: Path) -> None:
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.unlink(missing_ok=True)  # a dead worker's half-written file: start again
    check_free_disk(job.total, Path(settings.MODELS_DIR))
    source = Path(job.source)
    if not source.is_file():
        raise PullRefused(f"the file to quantize is gone: {source}")

    done = threading.Event()
    still_ours = True

    def watch() -> None:
        nonlocal still_ours
        # The estimate may fall short of the real size: stay below 100% until the end.
        while not done.wait(PROGRESS_INTERVAL):
            size = partial.stat().st_size if partial.exists() else 0
            if not do_record_quantize_progress(job.pk, instance, min(size, job.total - 1)):
                still_ours = False
                return

    watcher = threading.Thread(target=watch, name=f"quantize-{job.pk}-progress", daemon=True)
    watcher.start()
    try:
        quantize_gguf(
            source,
            partial,
            job.quantize,
            threads=int(settings.HERD_NUM_THREADS),
            requantize=job.requantize,
        )
    finally:
        done.set()
        watcher.join()
    if not still_ours or not do_record_quantize_progress(job.pk, instance, job.total):
        raise PullCancelled()
    if not do_mark_quantize_verifying(job.pk, instance):
        raise PullCancelled()

    sha256 = file_sha256(partial)
    target = blob_path(sha256)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(partial, target)
    record = do_import_model(job.name, target, sha256=sha256)
    do_apply_settings(record, job.record_fields)
    if not do_finish_quantize(job.pk, instance, record):
        raise PullCancelled()
    log.info("quantized %s to %s: %s (%d bytes)", job.source, job.quantize, job.name, record.size)
