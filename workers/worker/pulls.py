"""Run one pull job on a worker: download every file, check its sha256, register the model.

Runs in a Celery thread of a worker consuming the ``pulls`` queue. Files are downloaded one
after the other into ``MODELS_DIR/.partial/<sha256>.part`` (so any pull of the same bytes
resumes the same partial file), checked against the hub's LFS sha256, then moved to
``MODELS_DIR/hf.co/{owner}/{repo}/{file}``. A file lock on each partial keeps two workers (a
dead one's late writes and its successor) from writing one file at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
from django.conf import settings
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import disable_progress_bars

from models_app.gguf_metadata import GGUFError
from models_app.hub import (
    PullCancelled,
    check_free_disk,
    download_file,
    partial_path,
    target_path,
)
from models_app.models import PullJob
from models_app.pulls import (
    do_claim_pull,
    do_fail_pull,
    do_finish_pull,
    do_mark_verifying,
    do_record_progress,
)
from models_app.references import HubFile, PullRefused, is_projector_file
from models_app.registration import do_import_model, file_sha256

log = logging.getLogger(__name__)

# How often the bytes on disk are written to the job row while a file arrives.
PROGRESS_INTERVAL = 0.25


class ChecksumMismatch(Exception):
    pass


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel if this process dies
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_pull(job_id: int, instance: str) -> None:
    """Run the job if it is QUEUED; any other state means someone else has it, or had it."""
    job = do_claim_pull(job_id, instance)
    if job is None:
        return
    disable_progress_bars()  # progress goes to the job row, not to the worker's log
    try:
        _pull(job, instance)
    except PullCancelled:
        log.info("pull %s of %s stopped: cancelled or taken over", job.pk, job.name)
    except ChecksumMismatch as exc:
        do_fail_pull(job.pk, instance, str(exc))
    except PullRefused as exc:
        do_fail_pull(job.pk, instance, str(exc))
    except (HfHubHTTPError, httpx2.HTTPError, OSError, GGUFError) as exc:
        do_fail_pull(job.pk, instance, f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        log.exception("pull %s crashed", job.pk)
        do_fail_pull(job.pk, instance, f"internal error: {type(exc).__name__}: {exc}")


def _pull(job: PullJob, instance: str) -> None:
    files = [HubFile(f["name"], int(f["size"]), f["sha256"]) for f in job.files]
    targets = [target_path(job.repo_id, f.name) for f in files]
    present = [_already_there(f, t) for f, t in zip(files, targets, strict=True)]
    missing = sum(
        f.size - _partial_size(f) for f, here in zip(files, present, strict=True) if not here
    )
    check_free_disk(missing, Path(settings.MODELS_DIR))

    done = 0
    for hub_file, here in zip(files, present, strict=True):
        if not here:
            _download(job, instance, hub_file, done)
        done += hub_file.size
        if not do_record_progress(job.pk, instance, done):
            raise PullCancelled()

    if not do_mark_verifying(job.pk, instance):
        raise PullCancelled()
    for hub_file, target, here in zip(files, targets, present, strict=True):
        if here:
            continue
        partial = partial_path(hub_file.sha256)
        with _locked(partial):
            actual = file_sha256(partial)
            if actual != hub_file.sha256:
                partial.unlink(missing_ok=True)
                raise ChecksumMismatch(
                    f"sha256 mismatch for {hub_file.name}: the hub lists {hub_file.sha256}, "
                    f"the download has {actual}; the file was removed"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(partial, target)

    # The plan lists the model's parts, then its vision projector when the repo has one.
    projector = next(
        (t for f, t in zip(files, targets, strict=True) if is_projector_file(f.name)), None
    )
    parts = [t for t in targets[1:] if t != projector]
    record = do_import_model(
        job.name,
        targets[0],
        sha256=files[0].sha256,
        parts=parts,
        projector=projector,
    )
    if not do_finish_pull(job.pk, instance, record):
        raise PullCancelled()
    log.info("pulled %s (%d bytes)", job.name, job.total)


def _already_there(hub_file: HubFile, target: Path) -> bool:
    """The very file is in place already (pulled under another name, or pulled before)."""
    return (
        target.is_file()
        and target.stat().st_size == hub_file.size
        and file_sha256(target) == hub_file.sha256
    )


def _partial_size(hub_file: HubFile) -> int:
    partial = partial_path(hub_file.sha256)
    return partial.stat().st_size if partial.exists() else 0


def _download(job: PullJob, instance: str, hub_file: HubFile, offset: int) -> None:
    partial = partial_path(hub_file.sha256)
    last_write = 0.0

    def on_bytes(size: int) -> bool:
        nonlocal last_write
        now = time.monotonic()
        if now - last_write < PROGRESS_INTERVAL and size < hub_file.size:
            return True
        last_write = now
        return do_record_progress(job.pk, instance, offset + size)

    with _locked(partial):
        download_file(job.repo_id, job.revision, hub_file, partial, on_bytes)
