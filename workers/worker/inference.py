"""What a worker does for one interactive or batch request, start to end.

Each function here runs in a Celery thread: it announces itself on the request's event stream,
gets the model resident, hands the work to the model's engine, and reports the outcome. Only
events leave this module; web turns them into OpenAI or Ollama responses.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import llama_cpp
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
    GenerationPayload,
    ModelSpec,
    Start,
    Timings,
    ToolCall,
    ToolDelta,
    Usage,
    error_event,
)
from workers.engine.generation import (
    Emit,
    RequestRejected,
    SamplingOptions,
    check_grammar,
    check_prompt_fits,
    check_tokens,
    infill_tokens,
    run_generation,
    tokenize_chat,
    tokenize_prompt,
)
from workers.engine.jobs import BATCH, INTERACTIVE
from workers.engine.prompts import TemplateError, message_text, render_chat_prompt
from workers.engine.reasoning import ReasoningSplitter, ReasoningStream
from workers.engine.stepper import sequence_context
from workers.engine.tool_stream import ForcedCallStream
from workers.engine.tools import ToolCallHold, ToolChoiceError, ToolPlan, plan_tools
from workers.engine.truncation import PromptTooLong, answer_room, fit_chat, keep_end
from workers.engine.vocabulary import vocabulary
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
    lane = BATCH if payload.is_batch else INTERACTIVE
    sink = BackgroundPublisher(publisher)

    def emit(text: str, tokens: int, logprobs: list[dict[str, Any]] | None) -> bool:
        return sink.emit(Delta(text, tokens, logprobs))

    def run(llama: llama_cpp.Llama) -> None:
        try:
            if publisher.cancelled():
                return
            options = SamplingOptions.from_json(payload.options)
            try:
                plan = plan_tools(payload.tools, payload.tool_choice)
                tokens, param = _prompt_tokens(llama, resident.spec, payload, plan, options)
                if payload.action == COUNT_TOKENS:
                    # Counted as the prompt would be read, over the context or not.
                    sink.emit(_done_event(COUNT_TOKENS, len(tokens), 0, load_ns, started))
                    return
                check_prompt_fits(llama, tokens, param)
                if plan.schema is not None:
                    options = replace(
                        options,
                        response_format={
                            "type": "json_schema",
                            "schema": plan.schema,
                            "param": "tools",
                        },
                    )
                check_grammar(llama, options.response_format)
            except (RequestRejected, ToolChoiceError) as exc:
                sink.emit(_rejection(exc))
                return
            if payload.echo:
                emit(_echoed(llama, payload), 0, None)
            calls = _ToolCalls(plan, emit, sink.emit)
            reasoning = _reasoning(
                llama, resident.spec, payload, options, tokens, calls.emit, sink.emit
            )
            result = run_generation(
                llama, tokens, options, reasoning.emit if reasoning else calls.emit
            )
            if reasoning is not None and result.finish_reason != "cancelled":
                reasoning.finish()
            tool_calls = calls.finish(cut=result.finish_reason == "length")
            finish_reason = result.finish_reason
            if tool_calls and finish_reason == "stop":
                finish_reason = "tool_calls"
            sink.emit(
                _done_event(
                    finish_reason,
                    result.prompt_tokens,
                    result.completion_tokens,
                    load_ns,
                    started,
                    prompt_eval_ns=result.prompt_eval_ns,
                    eval_ns=result.eval_ns,
                    tool_calls=tool_calls,
                    stop_sequence=result.stop_sequence,
                    cached_tokens=result.cached_tokens,
                )
            )
        finally:
            sink.close()

    job = resident.engine.submit(run, lane=lane, sharer=payload.sharer)
    # This thread does the Redis round trips while the engine decodes.
    sink.pump(job.done)
    _run_on_engine(publisher, job, batch=payload.is_batch)


class _ToolCalls:
    """Where an answer's text goes when tools are offered. ``auto``: text that opens like a
    call is held to the end and read as calls there (``ToolCallHold``). ``forced``: the call
    goes out as ``ToolDelta`` events while it is written (``ForcedCallStream``). ``none``:
    straight to ``emit``."""

    def __init__(self, plan: ToolPlan, emit: Emit, send: Callable[[ToolDelta], bool]) -> None:
        self._emit = emit
        self._send = send
        self._hold = ToolCallHold(plan) if plan.mode == "auto" else None
        names = [f["name"] for f in plan.functions]
        self._forced = ForcedCallStream(names) if plan.mode == "forced" else None

    def emit(self, text: str, tokens: int, logprobs: list[dict[str, Any]] | None) -> bool:
        if self._forced is not None:
            alive = True
            for delta in self._forced.feed(text):
                alive = self._send(ToolDelta(**delta)) and alive
            return alive
        if self._hold is None:
            return self._emit(text, tokens, logprobs)
        alive = True
        for piece in self._hold.feed((text, tokens, logprobs)):
            alive = self._emit(*piece) and alive
        return alive

    def finish(self, cut: bool) -> list[ToolCall] | None:
        """The answer's calls, once it has ended (``cut``: by its token limit)."""
        if self._forced is not None:
            call = self._forced.finish()
            return [_tool_call(call)] if call is not None else None
        if self._hold is None:
            return None
        calls, rest = self._hold.finish(cut)
        for piece in rest:
            self._emit(*piece)
        return [_tool_call(c) for c in calls] if calls else None


def _reasoning(
    llama: llama_cpp.Llama,
    spec: ModelSpec,
    payload: GenerationPayload,
    options: SamplingOptions,
    prompt: list[int],
    answer: Emit,
    send: Callable[[Delta], bool],
) -> ReasoningStream | None:
    """Where the reasoning of a model that reasons apart goes: ``Delta.thinking``. None when
    the request keeps the text whole, or when a grammar shapes all of the output (a forced
    call, a JSON format): then none of it is reasoning."""
    if not (payload.separate_reasoning and len(spec.reasoning_tags) == 2):
        return None
    if options.response_format and options.response_format.get("type") != "text":
        return None
    opening, closing = spec.reasoning_tags
    # The end of the prompt says whether the template opened the block for the model.
    tail = b"".join(vocabulary(llama).piece(t) for t in prompt[-16:]).decode("utf-8", "replace")
    splitter = ReasoningSplitter.after_prompt(tail, opening, closing)

    def think(text: str, tokens: int, logprobs: list[dict[str, Any]] | None) -> bool:
        return send(Delta("", tokens, logprobs, thinking=text))

    return ReasoningStream(splitter, think, answer)


def _tool_call(call: dict[str, Any]) -> ToolCall:
    return ToolCall(call["id"], call["name"], call["arguments"], call.get("arguments_text"))


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


def _rejection(exc: RequestRejected | ToolChoiceError) -> Error:
    code: str = "invalid_value"
    param: str | None = "tool_choice"
    if isinstance(exc, RequestRejected):
        code, param = exc.code, exc.param
    return error_event(str(exc), status=400, type_="invalid_request_error", code=code, param=param)


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
    """Embed each input and publish one ``embeddings`` event."""
    leave_queue(runtime().redis, payload.waiting_set, request_id)
    publisher = EventPublisher(runtime().redis, request_id)
    if not _announce(publisher):
        return
    started = time.perf_counter_ns()
    resident = _load(publisher, _with_context_size(spec, payload.num_ctx), payload.keep_alive)
    if resident is None:
        return
    load_ns = time.perf_counter_ns() - started

    def run(_llama: llama_cpp.Llama) -> None:
        embedder = resident.embedder()
        try:
            inputs = _embedding_texts(embedder, payload.input)
        except RequestRejected as exc:
            publisher.publish(_rejection(exc))
            return
        limit = embedder.n_ctx()
        for index, text in enumerate(inputs):
            count = len(embedder.tokenize(text.encode("utf-8")))
            if count > limit and not payload.truncate:
                publisher.publish(
                    error_event(
                        f"input {index} has {count} tokens, over the context of {limit}",
                        status=400,
                        type_="invalid_request_error",
                        code="context_length_exceeded",
                        param="input",
                    )
                )
                return
        vectors, total_tokens = embedder.embed(
            inputs, normalize=payload.normalize, truncate=True, return_count=True
        )
        publisher.publish(
            Embeddings(
                [_encode_vector(v, payload.encoding_format) for v in vectors],
                Usage(prompt_tokens=total_tokens),
                Timings(load_ns=load_ns, total_ns=time.perf_counter_ns() - started),
            )
        )

    lane = BATCH if payload.is_batch else INTERACTIVE
    try:
        job = resident.engine.submit(run, lane=lane, sharer=payload.sharer)
        _run_on_engine(publisher, job, batch=payload.is_batch)
    finally:
        runtime().residency.release(resident, payload.keep_alive)


def _embedding_texts(embedder: llama_cpp.Llama, inputs: list[str | list[int]]) -> list[str]:
    """Each input as text: llama.cpp's embedder tokenizes text itself, so a token-id input
    is detokenized first (its tokens again, for text the vocabulary tokenizes one way)."""
    texts = []
    for item in inputs:
        if isinstance(item, str):
            texts.append(item)
        else:
            tokens = check_tokens(embedder, item, "input")
            texts.append(embedder.detokenize(tokens).decode("utf-8", errors="replace"))
    return texts


def _announce(publisher: EventPublisher) -> bool:
    """Claim the request and tell web which worker took it. False if the client already left,
    or if another delivery of the same message has it (a redelivery after the visibility
    timeout while the first still runs must not write a second answer into the stream)."""
    state = runtime()
    if not publisher.claim(state.instance):
        return False
    return publisher.publish(Start(state.name, state.instance))


def _run_on_engine(publisher: EventPublisher, job: Any, *, batch: bool) -> None:
    try:
        job.wait()
    except Exception as exc:
        if batch and isinstance(exc, redis.RedisError):
            # The broker went away under a batch line: not the line's fault, so it is handed
            # back and runs again (workers.worker.batch) instead of going to the error file.
            raise
        log.exception("request failed on the engine")
        publisher.publish(error_event(f"generation failed: {exc}", status=500))


def _prompt_tokens(
    llama: llama_cpp.Llama,
    spec: ModelSpec,
    payload: GenerationPayload,
    plan: ToolPlan,
    options: SamplingOptions,
) -> tuple[list[int], str]:
    """The prompt's tokens; with ``truncate`` in the payload, cut down to leave room for the
    answer (``workers.engine.truncation``)."""
    n_ctx = sequence_context(llama)
    limit = n_ctx - answer_room(n_ctx, options.max_tokens) if payload.truncate else 0
    if payload.messages is None:
        if payload.suffix is not None:
            prefix = _prompt_without_bos(llama, payload)
            return infill_tokens(llama, prefix, payload.suffix), "prompt"
        if payload.prompt_tokens is not None:
            return check_tokens(llama, payload.prompt_tokens, "prompt"), "prompt"
        tokens = tokenize_prompt(llama, payload.prompt or "")
        if limit:
            tokens = keep_end(tokens, limit, keep_first=int(tokens[:1] == [llama.token_bos()]))
        return tokens, "prompt"
    bos = llama._model.token_get_text(llama.token_bos()) if llama.token_bos() >= 0 else ""
    eos = llama._model.token_get_text(llama.token_eos()) if llama.token_eos() >= 0 else ""

    def render(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> list[int]:
        prompt = render_chat_prompt(
            spec.chat_template,
            messages,
            bos_token=bos,
            eos_token=eos,
            system_prompt=spec.system_prompt,
            tools=tools,
            variables=payload.template_variables,
        )
        return tokenize_chat(llama, prompt, [message_text(m.get("content")) for m in messages])

    # The functions the model may call, and only those (a named tool_choice offers one).
    tools = [{"type": "function", "function": f} for f in plan.functions] or None
    # The record's messages (a Modelfile's MESSAGE lines) open every chat.
    messages = [*spec.messages, *payload.messages]
    try:
        if not limit:
            return render(messages, tools), "messages"
        return fit_chat(messages, tools, render, limit), "messages"
    except TemplateError as exc:
        raise RequestRejected(str(exc), code="invalid_messages", param="messages") from exc
    except PromptTooLong as exc:
        raise RequestRejected(
            f"This model's maximum context length is {n_ctx} tokens, and {exc}.",
            code="context_length_exceeded",
            param="messages",
        ) from exc


def _prompt_without_bos(llama: llama_cpp.Llama, payload: GenerationPayload) -> list[int]:
    if payload.prompt_tokens is not None:
        return check_tokens(llama, payload.prompt_tokens, "prompt")
    return llama.tokenize((payload.prompt or "").encode("utf-8"), add_bos=False, special=False)


def _echoed(llama: llama_cpp.Llama, payload: GenerationPayload) -> str:
    """The prompt as ``echo`` gives it back ahead of the answer."""
    if payload.prompt_tokens is None:
        return payload.prompt or ""
    return llama.detokenize(payload.prompt_tokens).decode("utf-8", errors="replace")


def _encode_vector(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]
