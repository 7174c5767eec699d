"""Batch job services: ``check_*`` validate, ``do_*`` change state.

Every state change is a conditional UPDATE on the expected current state, so two workers (or a
worker and the API) racing on one batch or line can never both win.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from accounts.usage import write_usage_record
from inference_app.batches.files import FilePurpose, StoredFile
from inference_app.batches.models import (
    IN_FLIGHT,
    NOT_STARTED,
    TERMINAL,
    UNFINISHED,
    BatchJob,
    BatchLine,
    BatchStatus,
    LineStatus,
)
from inference_app.batches.validation import ENDPOINT_SERIALIZERS, check_batch_input
from models_app.models import ModelRecord
from project.broker import sync_client
from project.durations import parse_duration
from project.errors import ApiError
from workers.broker import keys
from workers.broker.placement import NoWorker, choose_among
from workers.broker.placement import candidates as placement_candidates
from workers.broker.wire import BATCH_LINE
from workers.models import Placement

# What a publish or a Redis call raises while the broker is away (or restarting).
BROKER_ERRORS: tuple[type[Exception], ...] = (OperationalError, RedisError, OSError)
log = logging.getLogger(__name__)

# Lines a batch lane's message carries: a worker claims them in one transaction and runs them
# side by side, instead of paying a message, a claim and a commit for each line.
LINES_PER_MESSAGE = 8


class BatchRequestError(ApiError, ValueError):
    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        code = "not_found" if status == 404 else "invalid_value"
        super().__init__(message, status=status, param=param, code=code)


def parse_completion_window(window: str) -> timedelta:
    """OpenAI accepts ``24h``; any positive duration (``30m``, ``2d``) is accepted here too."""
    try:
        seconds = parse_duration(window) if isinstance(window, str) else 0.0
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise BatchRequestError(
            "completion_window must be a duration such as 24h", "completion_window"
        )
    return timedelta(seconds=seconds)


def do_create_batch(
    input_file_id: str,
    endpoint: str,
    completion_window: str,
    metadata: dict[str, Any] | None,
    api_key_id: int | None = None,
    *,
    user_id: int | None = None,
    team_id: int | None = None,
    may_use: Callable[[str], bool] = lambda model: True,
) -> BatchJob:
    """Create a batch of ``user_id`` (shared with ``team_id``'s keys) and validate its file
    (whose content must be there: a 400 otherwise, and no batch). A valid file's lines are sent
    to the models' batch lanes once the transaction commits; an invalid one (a line naming a
    model ``may_use`` refuses included) fails the batch, and nothing runs. The caller has
    checked that the file is one the key may see."""
    if endpoint not in ENDPOINT_SERIALIZERS:
        raise BatchRequestError(
            f"endpoint must be one of {', '.join(ENDPOINT_SERIALIZERS)}", "endpoint"
        )
    window = parse_completion_window(completion_window)
    input_file = StoredFile.objects.filter(pk=input_file_id).first()
    if input_file is None:
        raise BatchRequestError(f"No such file: {input_file_id}", "input_file_id", status=404)
    if input_file.purpose != FilePurpose.BATCH:
        raise BatchRequestError("the input file's purpose must be 'batch'", "input_file_id")
    try:
        content = input_file.path.read_bytes()
    except FileNotFoundError:
        raise BatchRequestError(
            f"the content of file {input_file_id} is gone", "input_file_id"
        ) from None
    now = timezone.now()
    batch = BatchJob.objects.create(
        endpoint=endpoint,
        input_file=input_file,
        completion_window=completion_window,
        metadata=metadata,
        expires_at=now + window,
        api_key_id=api_key_id,
        user_id=user_id,
        team_id=team_id,
    )
    lines, errors = check_batch_input(content, endpoint, may_use)
    if errors:
        BatchJob.objects.filter(pk=batch.pk).update(
            status=BatchStatus.FAILED,
            failed_at=timezone.now(),
            errors={"object": "list", "data": errors},
        )
    else:
        with transaction.atomic():
            BatchLine.objects.bulk_create(
                BatchLine(
                    batch=batch,
                    line_number=p.line_number,
                    custom_id=p.custom_id,
                    model_name=p.model_name,
                    body=p.body,
                )
                for p in lines
            )
            BatchJob.objects.filter(pk=batch.pk).update(
                status=BatchStatus.IN_PROGRESS, in_progress_at=timezone.now()
            )
            transaction.on_commit(lambda: send_lines(batch.pk))
    batch.refresh_from_db()
    return batch


def send_lines(batch_id: str) -> None:
    """Top the batch up to its window: send its next pending lines, in file order, on their
    models' batch lanes, up to ``LINES_PER_MESSAGE`` lines a message.

    Called as each line ends; it sends nothing until a quarter of the window is free, so that
    its queries and the reading of the workers' state are paid once for several lines.
    """
    from project.celery import app

    window = settings.HERD_BATCH_WINDOW
    in_flight = BatchLine.objects.filter(batch_id=batch_id, status__in=IN_FLIGHT).count()
    room = window - in_flight
    if room <= 0 or (in_flight and room < max(1, window // 4)):
        return
    candidates = list(
        BatchLine.objects.filter(batch_id=batch_id, status=LineStatus.PENDING)
        .order_by("line_number")
        .values_list("pk", "model_name")[:room]
    )
    if not candidates:
        return
    sizes = dict(ModelRecord.objects.values_list("name", "size"))
    pins: dict[str, list[str]] = {}
    for name, pinned in Placement.objects.values_list("model__name", "worker"):
        pins.setdefault(name, []).append(pinned)
    try:
        workers = placement_candidates(sync_client())
    except BROKER_ERRORS:
        return  # lines stay pending; beat sends them once the broker is back
    by_lane: dict[str, list[int]] = {}
    unknown = False
    with transaction.atomic():
        for line_id, model_name in candidates:
            if model_name not in sizes:
                unknown |= _fail_unknown_model(line_id, model_name)
                continue
            try:
                worker = choose_among(workers, model_name, sizes[model_name], pins.get(model_name))
            except NoWorker:
                break  # lines stay pending; beat sends them when a worker is back
            # Conditional, so two workers topping up at once never send one line twice.
            if BatchLine.objects.filter(pk=line_id, status=LineStatus.PENDING).update(
                status=LineStatus.QUEUED, queued_at=timezone.now()
            ):
                by_lane.setdefault(keys.batch_lane(worker.name), []).append(line_id)
    if unknown:
        finalize_if_done(batch_id)  # those may have been its last lines
    messages = line_messages(by_lane)
    for index, (lane, lines) in enumerate(messages):
        try:
            app.send_task(BATCH_LINE, args=(lines,), queue=lane)
        except BROKER_ERRORS:
            # The messages may not exist: hand the lines back so beat sends them again. Should
            # one exist after all, the two deliveries meet at do_claim_lines and one of them runs.
            unsent = [line for _, chunk in messages[index:] for line in chunk]
            BatchLine.objects.filter(pk__in=unsent, status=LineStatus.QUEUED).update(
                status=LineStatus.PENDING
            )
            log.warning("the broker is away; %s lines wait for the next top-up", len(unsent))
            return


def line_messages(by_lane: dict[str, list[int]]) -> list[tuple[str, list[int]]]:
    """The messages that send ``by_lane``'s lines: (lane, lines), up to ``LINES_PER_MESSAGE``
    lines each, every lane's lines in the order given."""
    return [
        (lane, lines[start : start + LINES_PER_MESSAGE])
        for lane, lines in by_lane.items()
        for start in range(0, len(lines), LINES_PER_MESSAGE)
    ]


def _fail_unknown_model(line_id: int, model_name: str) -> bool:
    """A pending line whose model does not exist goes to the error file without running."""
    error = {"code": "model_not_found", "message": f"The model '{model_name}' does not exist"}
    return bool(
        BatchLine.objects.filter(pk=line_id, status=LineStatus.PENDING).update(
            status=LineStatus.FAILED, error=error, finished_at=timezone.now()
        )
    )


def do_claim_lines(line_ids: list[int], worker_instance: str) -> list[BatchLine]:
    """QUEUED -> RUNNING for this worker instance, each line's ``attempts`` counting this try,
    in one transaction; returns the lines claimed (with their batch and its key), in the order
    given. A line not for running (done, cancelled, or taken: a message delivered twice runs
    once) is left out."""
    claimed = []
    with transaction.atomic():
        for line_id in line_ids:
            if BatchLine.objects.filter(
                pk=line_id, status=LineStatus.QUEUED, batch__status=BatchStatus.IN_PROGRESS
            ).update(
                status=LineStatus.RUNNING,
                worker_instance=worker_instance,
                attempts=F("attempts") + 1,
            ):
                claimed.append(line_id)
    if not claimed:
        return []
    lines = BatchLine.objects.select_related("batch", "batch__api_key").in_bulk(claimed)
    return [lines[line_id] for line_id in claimed]


def do_release_line(line_id: int, worker_instance: str) -> None:
    """RUNNING (by this instance) -> PENDING, for a line its worker could not finish."""
    BatchLine.objects.filter(
        pk=line_id, status=LineStatus.RUNNING, worker_instance=worker_instance
    ).update(status=LineStatus.PENDING, worker_instance="")


def top_up_all_batches() -> None:
    """Send pending lines of every running batch, up to each one's window: picks up lines
    handed back while the broker was away."""
    for batch_id in BatchJob.objects.filter(status=BatchStatus.IN_PROGRESS).values_list(
        "pk", flat=True
    ):
        send_lines(batch_id)


def do_record_result(
    line_id: int,
    worker_instance: str,
    *,
    failed: bool,
    response: dict[str, Any] | None,
    error: dict[str, Any] | None,
    usage: dict[str, Any] | None = None,
) -> bool:
    """RUNNING (by this instance) -> COMPLETED or FAILED, once, with its ``usage`` record
    (UsageRecord fields) in the same transaction. Returns whether it recorded; then tops its
    batch up and finalizes it if that was its last unfinished line."""
    with transaction.atomic():
        recorded = BatchLine.objects.filter(
            pk=line_id, status=LineStatus.RUNNING, worker_instance=worker_instance
        ).update(
            status=LineStatus.FAILED if failed else LineStatus.COMPLETED,
            response=storable_json(response),
            error=storable_json(error),
            finished_at=timezone.now(),
        )
        if recorded and usage is not None:
            write_usage_record(usage)
    if recorded:
        batch_id = BatchLine.objects.filter(pk=line_id).values_list("batch_id", flat=True).first()
        if batch_id:
            send_lines(batch_id)
            finalize_if_done(batch_id)
    return bool(recorded)


def storable_json(value: Any) -> Any:
    """``value`` with every NUL character in its strings replaced by U+FFFD.

    PostgreSQL's jsonb cannot hold U+0000, which a model can generate like any other
    character; on every database alike, so that a batch's output does not depend on where it
    was stored, the character becomes the replacement character, as an undecodable byte does.
    """
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {storable_json(k): storable_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable_json(v) for v in value]
    return value


def line_request_id(batch_id: str, line_id: int, attempt: int) -> str:
    """The request id a line runs under on its ``attempt``-th try (its cancel flag's key)."""
    return f"{batch_id}-{line_id}-{attempt}"


def do_cancel_batch(batch_id: str) -> BatchJob:
    """Lines not started stop now; running ones are told to stop (within a token, or before
    they start when they still wait for the engine); then the batch ends CANCELLED with the
    results already made."""
    moved = BatchJob.objects.filter(
        pk=batch_id, status__in=(BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS)
    ).update(status=BatchStatus.CANCELLING, cancelling_at=timezone.now())
    if moved:
        BatchLine.objects.filter(batch_id=batch_id, status__in=NOT_STARTED).update(
            status=LineStatus.CANCELLED
        )
        running = BatchLine.objects.filter(batch_id=batch_id, status=LineStatus.RUNNING)
        _set_cancel_flags(batch_id, list(running.values_list("pk", "attempts")))
        finalize_if_done(batch_id)
    return BatchJob.objects.get(pk=batch_id)


def do_cancel_line(line_id: int, worker_instance: str) -> None:
    """RUNNING (by this instance) -> CANCELLED: its batch was cancelled while it ran."""
    if BatchLine.objects.filter(
        pk=line_id, status=LineStatus.RUNNING, worker_instance=worker_instance
    ).update(status=LineStatus.CANCELLED, finished_at=timezone.now()):
        batch_id = BatchLine.objects.filter(pk=line_id).values_list("batch_id", flat=True).first()
        if batch_id:
            finalize_if_done(batch_id)


def expire_overdue_batches() -> list[str]:
    """Batches past their completion window end EXPIRED, keeping their partial results."""
    overdue = list(
        BatchJob.objects.filter(
            status=BatchStatus.IN_PROGRESS, expires_at__lte=timezone.now()
        ).values_list("pk", flat=True)
    )
    expired = []
    for batch_id in overdue:
        if not BatchJob.objects.filter(pk=batch_id, status=BatchStatus.IN_PROGRESS).update(
            status=BatchStatus.FINALIZING, finalizing_at=timezone.now()
        ):
            continue  # finished or cancelled meanwhile
        # Running lines expire too, before the outputs are read: a result that arrives later
        # finds its line no longer RUNNING and is dropped, so the counts and the output file
        # always agree. Their generations are told to stop.
        running = list(
            BatchLine.objects.filter(batch_id=batch_id, status=LineStatus.RUNNING).values_list(
                "pk", "attempts"
            )
        )
        BatchLine.objects.filter(batch_id=batch_id, status__in=UNFINISHED).update(
            status=LineStatus.EXPIRED, finished_at=timezone.now()
        )
        _set_cancel_flags(batch_id, running)
        _write_outputs(batch_id, BatchStatus.EXPIRED, "expired_at")
        expired.append(batch_id)
    return expired


def _set_cancel_flags(batch_id: str, running: list[tuple[int, int]]) -> None:
    """Tell the generations of these (line id, attempt) pairs to stop within a token."""
    if not running:
        return
    pipe = sync_client().pipeline(transaction=False)
    for line_id, attempt in running:
        pipe.set(keys.cancel_flag(line_request_id(batch_id, line_id, attempt)), 1, ex=600)
    pipe.execute()


def requeue_lines_of_dead_workers(live_instances: set[str]) -> int:
    """Lines left RUNNING by a worker that is gone go back to PENDING and are sent again."""
    orphans = list(
        BatchLine.objects.filter(status=LineStatus.RUNNING, batch__status=BatchStatus.IN_PROGRESS)
        .exclude(worker_instance__in=live_instances)
        .values_list("pk", "batch_id", "worker_instance")
    )
    batches: set[str] = set()
    requeued = 0
    for line_id, batch_id, instance in orphans:
        if BatchLine.objects.filter(
            pk=line_id, status=LineStatus.RUNNING, worker_instance=instance
        ).update(status=LineStatus.PENDING, worker_instance=""):
            batches.add(batch_id)
            requeued += 1
    for batch_id in batches:
        send_lines(batch_id)
    return requeued


def finalize_if_done(batch_id: str) -> None:
    """When no line is left to run: IN_PROGRESS -> FINALIZING -> COMPLETED, or
    CANCELLING -> CANCELLED; output and error files written either way."""
    if BatchLine.objects.filter(batch_id=batch_id, status__in=UNFINISHED).exists():
        return
    if BatchJob.objects.filter(pk=batch_id, status=BatchStatus.IN_PROGRESS).update(
        status=BatchStatus.FINALIZING, finalizing_at=timezone.now()
    ):
        _write_outputs(batch_id, BatchStatus.COMPLETED, "completed_at")
    elif BatchJob.objects.filter(pk=batch_id, status=BatchStatus.CANCELLING).exists():
        _write_outputs(
            batch_id, BatchStatus.CANCELLED, "cancelled_at", from_status=BatchStatus.CANCELLING
        )


def _write_outputs(
    batch_id: str, final: BatchStatus, stamp: str, from_status: BatchStatus = BatchStatus.FINALIZING
) -> None:
    output: list[str] = []
    failures: list[str] = []
    for line in BatchLine.objects.filter(
        batch_id=batch_id, status__in=(LineStatus.COMPLETED, LineStatus.FAILED)
    ).order_by("line_number"):
        record = json.dumps(
            {
                "id": f"batch_req_{line.pk}",
                "custom_id": line.custom_id,
                "response": line.response,
                "error": line.error,
            }
        )
        (failures if line.status == LineStatus.FAILED else output).append(record)
    with transaction.atomic():
        batch = BatchJob.objects.select_for_update().get(pk=batch_id)
        if batch.status != from_status or batch.status in TERMINAL:
            return  # someone else finished it
        if output:
            batch.output_file = StoredFile.create(
                FilePurpose.BATCH_OUTPUT,
                f"{batch_id}_output.jsonl",
                ("\n".join(output) + "\n").encode(),
                user_id=batch.user_id,
                team_id=batch.team_id,
            )
        if failures:
            batch.error_file = StoredFile.create(
                FilePurpose.BATCH_OUTPUT,
                f"{batch_id}_error.jsonl",
                ("\n".join(failures) + "\n").encode(),
                user_id=batch.user_id,
                team_id=batch.team_id,
            )
        batch.status = final
        setattr(batch, stamp, timezone.now())
        batch.save()
