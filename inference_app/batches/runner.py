"""Run batch lines: claim them, have the worker serve each line's payload, and record the
response body the endpoint would have returned on the line, exactly once.

This runs in a worker process (the batch lane's task, ``inference_app.batches.tasks``), but
the line's life is the batch app's: the worker only serves the payload and hands back its
events, through the ``LineServer`` it offers (``workers.broker.line_server``). The worker
serves it like any request, so batch and interactive answers are made the same way.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from functools import partial
from typing import Any

from django.db import close_old_connections

from inference_app.batches.models import BatchJob, BatchLine, BatchStatus
from inference_app.batches.services import (
    BROKER_ERRORS,
    do_cancel_line,
    do_claim_lines,
    do_record_result,
    do_release_line,
    line_request_id,
)
from inference_app.batches.validation import ENDPOINT_SERIALIZERS
from inference_app.openai.format import ChatFormat, CompletionFormat
from inference_app.replies import Answer
from inference_app.rerank.format import rerank_body
from inference_app.responses_api.format import ResponseObjectFormat
from inference_app.responses_api.models import new_response_id
from models_app.models import ModelRecord
from models_app.services import ModelNotFound, find_ready_model
from workers.broker.line_server import line_server
from workers.broker.wire import Delta, Done, Embeddings, Error, GenerationPayload

log = logging.getLogger(__name__)

# Tries a line gets when something other than the broker breaks while it runs.
MAX_LINE_ATTEMPTS = 3


def start_batch_lines(line_ids: list[int]) -> None:
    """Claim the lines and run each on one of the worker's batch runner threads; returns at
    once.

    The Celery thread (and its message) is freed straight away, so a worker busy with a batch
    backlog always has a thread to take the next interactive request. Nothing is lost if the
    worker dies: its claimed lines are RUNNING under a dead instance, and beat sends them again.
    """
    server = line_server()
    instance = server.instance
    lines = do_claim_lines(line_ids, instance)
    try:
        records = _ready_models({line.model_name for line in lines})
    except Exception:
        # Claimed, and nobody would run them: hand them back for beat to send again.
        for line in lines:
            do_release_line(line.pk, instance)
        raise
    for line in lines:
        server.start(partial(_run_and_record, line, instance, records[line.model_name]))


def _ready_models(names: set[str]) -> dict[str, ModelRecord | None]:
    """The READY record of each model name (None: no such model), one lookup a name."""
    records: dict[str, ModelRecord | None] = {}
    for name in names:
        try:
            records[name] = find_ready_model(name)
        except ModelNotFound:
            records[name] = None
    return records


def _run_and_record(line: BatchLine, instance: str, record: ModelRecord | None) -> None:
    """Run a claimed line on ``record`` (None: its model is not ready) and record the
    outcome, handing the line back when something other than the line itself broke."""
    try:
        _run_claimed(line, instance, record)
    except BROKER_ERRORS:
        # The broker went away mid-line: hand the line back, and beat sends it again once it
        # can. However often: the line itself is not at fault.
        log.exception("batch line %s lost the broker; handing it back", line.pk)
        do_release_line(line.pk, instance)
    except Exception as exc:
        attempt = line.attempts
        if attempt < MAX_LINE_ATTEMPTS:
            log.exception("batch line %s failed on try %s; handing it back", line.pk, attempt)
            do_release_line(line.pk, instance)
            return
        # A line that breaks every time it runs would otherwise keep its batch from ever
        # finishing: it goes to the error file instead.
        log.exception("batch line %s failed %s times; recording the failure", line.pk, attempt)
        error = {"code": "server_error", "message": f"the line failed {attempt} times: {exc}"}
        request_id = line_request_id(line.batch_id, line.pk, attempt)
        response = {"status_code": 500, "request_id": request_id, "body": {"error": error}}
        do_record_result(line.pk, instance, failed=True, response=response, error=error)
    finally:
        close_old_connections()  # this thread's database connection, if the line opened one


def _run_claimed(line: BatchLine, instance: str, record: ModelRecord | None) -> None:
    started = time.monotonic()
    request_id = line_request_id(line.batch_id, line.pk, line.attempts)
    if record is None:
        _record(
            line,
            instance,
            404,
            request_id,
            None,
            {"code": "model_not_found", "message": f"The model '{line.model_name}' does not exist"},
            started,
        )
        return
    # A rerank line runs as an embedding request with a query (``EmbeddingsPayload``).
    reranking = line.batch.endpoint == "/v1/rerank"
    embeddings = reranking or line.batch.endpoint == "/v1/embeddings"
    serializer: Any = ENDPOINT_SERIALIZERS[line.batch.endpoint](data=line.body)
    serializer.is_valid(raise_exception=True)  # validated when the batch was created
    payload = serializer.to_payload() if embeddings else serializer.payload_for(record)
    # Batches of one key take turns with others'.
    sharer = str(line.batch.api_key_id) if line.batch.api_key_id is not None else None
    payload = dataclasses.replace(payload, lane="batch", sharer=sharer)
    events = line_server().serve(request_id, record.to_spec(), payload)
    final = events[-1] if events else Error("the request produced no result")
    stopped = not events or (isinstance(final, Done) and final.finish_reason == "cancelled")
    if (
        stopped
        and BatchJob.objects.filter(pk=line.batch_id, status=BatchStatus.CANCELLING).exists()
    ):
        do_cancel_line(line.pk, instance)
        return
    if not isinstance(final, Done | Embeddings):
        error = final if isinstance(final, Error) else Error(f"unexpected {final.type} event")
        _record(
            line,
            instance,
            error.status,
            request_id,
            None,
            {"code": error.code or "server_error", "message": error.message},
            started,
        )
        return
    model = line.body["model"]
    body: dict[str, Any]
    if isinstance(final, Embeddings) and reranking:
        body = rerank_body(model, final.data, serializer.validated_data, final.usage.prompt_tokens)
    elif isinstance(final, Embeddings):
        body = {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": v}
                for i, v in enumerate(final.data)
            ],
            "model": model,
            "usage": {
                "prompt_tokens": final.usage.prompt_tokens,
                "total_tokens": final.usage.total_tokens,
            },
        }
    else:
        deltas = [e for e in events if isinstance(e, Delta)]
        fmt = _format_for(line.batch.endpoint, serializer, payload, request_id, model)
        body = fmt.whole(Answer.from_events(deltas, final))
    _record(line, instance, 200, request_id, body, None, started)


def _format_for(
    endpoint: str,
    serializer: Any,
    payload: GenerationPayload,
    request_id: str,
    model: str,
) -> ChatFormat | CompletionFormat | ResponseObjectFormat:
    """The format the line's endpoint answers in, as web would."""
    if endpoint == "/v1/responses":
        return ResponseObjectFormat(
            new_response_id(),
            model,
            serializer.echo(payload),
            serializer.tool_set.namespaces,
            store=False,  # batch responses are not kept
        )
    if endpoint == "/v1/chat/completions":
        return ChatFormat(request_id, model)
    return CompletionFormat(request_id, model)


def _record(
    line: BatchLine,
    instance: str,
    status: int,
    request_id: str,
    body: dict[str, Any] | None,
    error: dict[str, Any] | None,
    started: float,
) -> None:
    response = {"status_code": status, "request_id": request_id, "body": body or {"error": error}}
    usage = _usage(line, status, (body or {}).get("usage") or {}, started)
    if not do_record_result(
        line.pk, instance, failed=error is not None, response=response, error=error, usage=usage
    ):
        log.info("line %s was recorded by another delivery; dropping this result", line.pk)


def _usage(line: BatchLine, status: int, usage: dict[str, Any], started: float) -> dict[str, Any]:
    """The line's usage record (one per line, on the key that created the batch)."""
    key = line.batch.api_key
    return {
        "key": key,
        "user_id": key.user_id if key else None,
        "team_id": key.team_id if key else None,
        "model": line.model_name,
        "endpoint": f"{line.batch.endpoint} (batch)",
        "method": "POST",
        "status": status,
        "prompt_tokens": int(usage.get("prompt_tokens") or 0),
        "completion_tokens": int(usage.get("completion_tokens") or 0),
        "duration_ms": (time.monotonic() - started) * 1000,
    }
