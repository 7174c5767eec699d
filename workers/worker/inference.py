"""What a worker does for one interactive or batch request, start to end.

Each function here runs in a Celery thread: it announces itself on the request's event stream,
gets the model resident, turns the wire payload into an engine request
(``workers.engine.requests``), and the engine's events (``workers.engine.events``) into wire
events on the stream. Everything about the model (templates, tokens, tools, reasoning,
grammars) happens in the engine; web turns the wire events into OpenAI or Ollama responses.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import replace

import numpy as np
import redis

from workers.broker.fairness import leave_queue
from workers.broker.wire import (
    COUNT_TOKENS,
    Delta,
    Done,
    Embeddings,
    EmbeddingsPayload,
    Error,
    Event,
    GenerationPayload,
    JsonObject,
    ModelSpec,
    Start,
    Timings,
    ToolCall,
    ToolDelta,
    Usage,
    error_event,
)
from workers.engine import events
from workers.engine.handle import RequestHandle
from workers.engine.logprobs import LogprobEntry
from workers.engine.requests import (
    BATCH,
    INTERACTIVE,
    Cancellation,
    EmbeddingRequest,
    EngineRequest,
    RerankRequest,
    SamplingOptions,
)
from workers.worker.events import BackgroundPublisher, EventPublisher
from workers.worker.residency import ResidentModel
from workers.worker.runtime import runtime

log = logging.getLogger(__name__)


def serve_generation(request_id: str, spec: ModelSpec, payload: GenerationPayload) -> None:
    """Run one chat or completion request (or an Ollama load/unload, or a count of a prompt's
    tokens) and publish its events."""
    leave_queue(runtime().redis, payload.waiting_set, request_id)
    publisher = EventPublisher(runtime().redis, request_id)
    if not _announce(publisher):
        return
    started = time.perf_counter_ns()
    spec = _with_context_size(spec, payload.num_ctx)
    keep_alive = payload.keep_alive
    if payload.action == "unload":
        runtime().residency.unload_when_idle(spec.id)
        publisher.publish(_done_event("unload", 0, 0, 0, started))
        return
    resident = _load(publisher, spec, keep_alive)
    if resident is None:
        return
    load_ns = time.perf_counter_ns() - started
    try:
        if payload.action == "load":
            publisher.publish(_done_event("load", 0, 0, load_ns, started))
            return
        _generate_on_engine(publisher, resident, payload, load_ns, started)
    finally:
        runtime().residency.release(resident, keep_alive)


def _generate_on_engine(
    publisher: EventPublisher,
    resident: ResidentModel,
    payload: GenerationPayload,
    load_ns: int,
    started: int,
) -> None:
    sink = BackgroundPublisher(publisher)
    request = generation_request(payload, Cancellation(publisher.cancelled))
    sink.on_cancel(request.cancel.cancel)

    def deliver(event: events.EngineEvent) -> None:
        sink.emit(wire_event(event, load_ns, started))

    handle = resident.engine.submit(request, deliver)
    _finish(publisher, sink, handle, batch=payload.is_batch)


def generation_request(payload: GenerationPayload, cancel: Cancellation) -> EngineRequest:
    """The engine request a chat or completion payload asks for."""
    return EngineRequest(
        prompt=payload.prompt,
        prompt_tokens=tuple(payload.prompt_tokens) if payload.prompt_tokens is not None else None,
        messages=tuple(payload.messages) if payload.messages is not None else None,
        images=tuple(base64.b64decode(image) for image in payload.images or ()),
        suffix=payload.suffix,
        template_variables=payload.template_variables,
        sampling=SamplingOptions.from_json(payload.options),
        tools=tuple(payload.tools) if payload.tools is not None else None,
        tool_choice=payload.tool_choice,
        separate_reasoning=payload.separate_reasoning,
        truncate=payload.truncate,
        echo=payload.echo,
        count_tokens_only=payload.action == COUNT_TOKENS,
        priority=BATCH if payload.is_batch else INTERACTIVE,
        sharer=payload.sharer,
        cancel=cancel,
    )


def _wire_logprobs(entries: list[LogprobEntry] | None) -> list[JsonObject] | None:
    """The engine's typed logprob entries as the wire's JSON objects."""
    return None if entries is None else [dict(entry) for entry in entries]


def wire_event(event: events.EngineEvent, load_ns: int, started: int) -> Event:
    """The wire event for an engine event (``Finished`` with the load and total times)."""
    if isinstance(event, events.TextPiece):
        return Delta(event.text, event.tokens, _wire_logprobs(event.logprobs))
    if isinstance(event, events.ThinkingPiece):
        return Delta("", event.tokens, _wire_logprobs(event.logprobs), thinking=event.text)
    if isinstance(event, events.ToolCallPiece):
        return ToolDelta(event.index, event.arguments, event.id, event.name)
    if isinstance(event, events.Rejected):
        return _rejection(event)
    if isinstance(event, events.Finished):
        finish_reason = (
            COUNT_TOKENS if event.finish_reason == events.COUNTED else event.finish_reason
        )
        return _done_event(
            finish_reason,
            event.usage.prompt_tokens,
            event.usage.completion_tokens,
            load_ns,
            started,
            prompt_eval_ns=event.prompt_eval_ns,
            eval_ns=event.eval_ns,
            tool_calls=[_tool_call(c) for c in event.tool_calls] or None,
            stop_sequence=event.stop_sequence,
            cached_tokens=event.usage.cached_tokens,
        )
    raise TypeError(f"no wire event for {event!r}")


def _finish(
    publisher: EventPublisher, sink: BackgroundPublisher, handle: RequestHandle, *, batch: bool
) -> None:
    """Wait for the engine, then for the outbox to have sent every event; an engine failure
    becomes an ``error`` event after them."""
    failure: BaseException | None = None
    try:
        handle.wait()
    except Exception as exc:
        failure = exc
    finally:
        sink.close()
    # This thread does the Redis round trips while the engine decodes.
    sink.pump(handle.done)
    if failure is not None:
        _report_failure(publisher, failure, batch=batch)


def _tool_call(call: events.ToolCall) -> ToolCall:
    return ToolCall(call.id, call.name, call.arguments, call.arguments_text)


def _done_event(
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
    load_ns: int,
    started: int,
    *,
    prompt_eval_ns: int = 0,
    eval_ns: int = 0,
    tool_calls: list[ToolCall] | None = None,
    stop_sequence: str | None = None,
    cached_tokens: int = 0,
) -> Done:
    return Done(
        finish_reason,
        Usage(prompt_tokens, completion_tokens, cached_tokens),
        Timings(load_ns, prompt_eval_ns, eval_ns, time.perf_counter_ns() - started),
        tool_calls,
        stop_sequence,
    )


def _rejection(event: events.Rejected) -> Error:
    return error_event(
        event.message,
        status=400,
        type_="invalid_request_error",
        code=event.code,
        param=event.param,
    )


def _with_context_size(spec: ModelSpec, num_ctx: int | None) -> ModelSpec:
    return replace(spec, num_ctx=int(num_ctx)) if num_ctx else spec


def _load(
    publisher: EventPublisher, spec: ModelSpec, keep_alive: float | None = None
) -> ResidentModel | None:
    """The resident model (the caller must release it), or None after publishing why not."""
    try:
        return runtime().residency.get(spec, keep_alive)
    except Exception as exc:
        log.exception("loading %s failed", spec.name)
        publisher.publish(error_event(f"model '{spec.name}' failed to load: {exc}", status=500))
        return None


def serve_embeddings(request_id: str, spec: ModelSpec, payload: EmbeddingsPayload) -> None:
    """Embed each input (or, with a query, score each document) and publish one
    ``embeddings`` event."""
    leave_queue(runtime().redis, payload.waiting_set, request_id)
    publisher = EventPublisher(runtime().redis, request_id)
    if not _announce(publisher):
        return
    started = time.perf_counter_ns()
    resident = _load(publisher, _with_context_size(spec, payload.num_ctx), payload.keep_alive)
    if resident is None:
        return
    load_ns = time.perf_counter_ns() - started

    lane = BATCH if payload.is_batch else INTERACTIVE
    request: EmbeddingRequest | RerankRequest
    if payload.query is not None:
        documents = tuple(item for item in payload.input if isinstance(item, str))
        request = RerankRequest(payload.query, documents, priority=lane, sharer=payload.sharer)
    else:
        request = EmbeddingRequest(
            tuple(item if isinstance(item, str) else tuple(item) for item in payload.input),
            normalize=payload.normalize,
            truncate=payload.truncate,
            priority=lane,
            sharer=payload.sharer,
        )
    try:
        handle = resident.engine.submit(request)
        try:
            final = handle.wait()
        except Exception as exc:
            _report_failure(publisher, exc, batch=payload.is_batch)
            return
        if isinstance(final, events.Rejected):
            publisher.publish(_rejection(final))
        elif isinstance(final, events.Embedded):
            publisher.publish(
                Embeddings(
                    [_encode_vector(v, payload.encoding_format) for v in final.vectors],
                    Usage(prompt_tokens=final.prompt_tokens),
                    Timings(load_ns=load_ns, total_ns=time.perf_counter_ns() - started),
                )
            )
        elif isinstance(final, events.Ranked):
            publisher.publish(
                Embeddings(
                    list(final.scores),
                    Usage(prompt_tokens=final.prompt_tokens),
                    Timings(load_ns=load_ns, total_ns=time.perf_counter_ns() - started),
                )
            )
    finally:
        runtime().residency.release(resident, payload.keep_alive)


def _announce(publisher: EventPublisher) -> bool:
    """Claim the request and tell web which worker took it. False if the client already left,
    or if another delivery of the same message has it (a redelivery after the visibility
    timeout while the first still runs must not write a second answer into the stream)."""
    state = runtime()
    if not publisher.claim(state.instance):
        return False
    return publisher.publish(Start(state.name, state.instance))


def _report_failure(publisher: EventPublisher, exc: BaseException, *, batch: bool) -> None:
    if batch and isinstance(exc, redis.RedisError):
        # The broker went away under a batch line: not the line's fault, so it is handed
        # back and runs again (workers.worker.batch) instead of going to the error file.
        raise exc
    log.error("request failed on the engine", exc_info=exc)
    publisher.publish(error_event(f"generation failed: {exc}", status=500))


def _encode_vector(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]
